using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Vfio;

namespace VfioLab.Scenarios.Reports;

/// <summary>
/// Samples a simulated host after each scenario step and keeps the peaks a <see cref="SizingReport"/> shows. Cost per
/// sample follows processes, containers and page-table runs, never pages.
/// </summary>
internal sealed class SizingSampler(SimulatedHost host)
{
    private readonly Dictionary<int, (Process Process, ulong PeakPages)> _processes = [];
    private readonly SortedDictionary<int, ContainerSizing> _containers = [];
    private readonly List<IommuDomain> _domainOrder = [];
    private readonly Dictionary<IommuDomain, DomainSizing> _domains = new(ReferenceEqualityComparer.Instance);
    private readonly List<TceTable> _windowOrder = [];
    private readonly Dictionary<TceTable, TceWindowSizing> _windows = new(ReferenceEqualityComparer.Instance);
    private int _samples;

    /// <summary>Records the host's state now.</summary>
    public void Sample()
    {
        _samples++;
        foreach (Process p in host.Machine.Processes)
        {
            ulong pages = p.LastMm.LockedVm;
            _processes[p.Pid] = _processes.TryGetValue(p.Pid, out var seen)
                ? (p, Math.Max(seen.PeakPages, pages))
                : (p, pages);
        }
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            if (c.Iommu is not IVfioIommuInspection type1 || c.Iommu is Spapr.TceContainer)
            {
                continue; // sPAPR has no mapping budget: its windows are reported below
            }
            ulong mappings = type1.MappingCount;
            ulong limit = mappings + type1.DmaAvail;
            _containers[c.Id] = _containers.TryGetValue(c.Id, out ContainerSizing? seen)
                ? seen with { PeakMappings = Math.Max(seen.PeakMappings, mappings), EntryLimit = limit }
                : new ContainerSizing(c.Id, mappings, limit);
        }
        foreach (IommuGroup g in host.IommuGroups.Values)
        {
            if (g.Domain is IommuDomain d && !d.IsFreed)
            {
                SampleDomain(d);
            }
            foreach (TceTable? window in g.TableGroup?.Windows ?? [])
            {
                if (window is not null)
                {
                    SampleWindow(g, window);
                }
            }
        }
    }

    /// <summary>The report of every sample so far.</summary>
    public SizingReport Report()
    {
        ulong pageSize = host.Machine.PageSize;
        var processes = _processes.OrderBy(kv => kv.Key).Select(kv => new ProcessSizing(
            kv.Value.Process.ToString(), kv.Value.PeakPages * pageSize, kv.Value.Process.LastMm.LockedVm * pageSize,
            kv.Value.Process.MemlockLimitBytes, kv.Value.Process.CapIpcLock)).ToList();
        return new SizingReport(_samples, processes, [.. _containers.Values], [.. _domainOrder.Select(d => _domains[d])],
            [.. _windowOrder.Select(w => _windows[w])]);
    }

    private void SampleWindow(IommuGroup group, TceTable window)
    {
        if (!_windows.TryGetValue(window, out TceWindowSizing? seen))
        {
            _windowOrder.Add(window);
            seen = new TceWindowSizing($"group {group.Id} {window}", window.Size, 0, window.ChargedPages * host.Machine.PageSize);
        }
        _windows[window] = seen with { PeakValid = Math.Max(seen.PeakValid, window.ValidEntries) };
    }

    private void SampleDomain(IommuDomain d)
    {
        if (!_domains.TryGetValue(d, out DomainSizing? seen))
        {
            _domainOrder.Add(d);
            seen = new DomainSizing(d.Name, d.MinPageSize, 0, [], 0);
        }
        ulong entries = d.TotalEntries;
        ulong tables = 0;
        foreach (ulong t in PageTableFootprint.TablesPerLevel(d.MappedRuns(), d.MinPageSize))
        {
            tables += t;
        }
        _domains[d] = seen with
        {
            PeakEntries = Math.Max(seen.PeakEntries, entries),
            EntriesAtPeak = entries > seen.PeakEntries || seen.EntriesAtPeak.Count == 0 ? d.EntryCounts() : seen.EntriesAtPeak,
            PeakTablePages = Math.Max(seen.PeakTablePages, tables),
        };
    }
}
