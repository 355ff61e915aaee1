using VfioLab.Lab;

namespace VfioLab.Scenarios.Reports;

/// <summary>
/// Samples a simulated host after each scenario step, through the model's public inspection (<see cref="LabProcess"/>,
/// <see cref="LabContainer"/>, <see cref="LabDomain"/>, <see cref="LabTceWindow"/>), and keeps the peaks a
/// <see cref="SizingReport"/> shows. Cost per sample follows processes, containers and page-table runs, never pages.
/// </summary>
internal sealed class SizingSampler(LabHost host)
{
    private readonly Dictionary<int, (LabProcess Process, ulong PeakPages)> _processes = [];
    private readonly SortedDictionary<int, ContainerSizing> _containers = [];
    private readonly List<string> _domainOrder = [];
    private readonly Dictionary<string, DomainSizing> _domains = new(StringComparer.Ordinal);
    private readonly List<int> _windowOrder = [];
    private readonly Dictionary<int, TceWindowSizing> _windows = [];
    private int _samples;

    /// <summary>Records the host's state now.</summary>
    public void Sample()
    {
        _samples++;
        foreach (LabProcess p in host.Processes)
        {
            if (!p.IsAlive)
            {
                continue; // an exited process keeps the row its earlier samples made
            }
            ulong pages = p.LockedVmPages;
            _processes[p.Pid] = _processes.TryGetValue(p.Pid, out var seen)
                ? (p, Math.Max(seen.PeakPages, pages))
                : (p, pages);
        }
        foreach (LabContainer c in host.Containers)
        {
            if (c.Backend != "type1" || c.DmaAvail is not { } dmaAvail)
            {
                continue; // sPAPR has no mapping budget: its windows are reported below
            }
            ulong mappings = c.MappingCount;
            ulong limit = mappings + dmaAvail;
            _containers[c.Id] = _containers.TryGetValue(c.Id, out ContainerSizing? seen)
                ? seen with { PeakMappings = Math.Max(seen.PeakMappings, mappings), EntryLimit = limit }
                : new ContainerSizing(c.Id, mappings, limit);
        }
        foreach (LabDevice device in host.Devices)
        {
            if (device.Domain is { } domain)
            {
                SampleDomain(domain);
            }
            foreach (LabTceWindow window in device.TceWindows)
            {
                SampleWindow(device.IommuGroup, window);
            }
        }
    }

    /// <summary>The report of every sample so far.</summary>
    public SizingReport Report()
    {
        var processes = _processes.OrderBy(kv => kv.Key).Select(kv => new ProcessSizing(
            kv.Value.Process.ToString(), kv.Value.PeakPages * host.PageSize, kv.Value.Process.LockedVmPages * host.PageSize,
            kv.Value.Process.MemlockLimitBytes, kv.Value.Process.CapIpcLock)).ToList();
        return new SizingReport(_samples, processes, [.. _containers.Values], [.. _domainOrder.Select(d => _domains[d])],
            [.. _windowOrder.Select(w => _windows[w])]);
    }

    private void SampleWindow(int group, LabTceWindow window)
    {
        if (!_windows.TryGetValue(window.Id, out TceWindowSizing? seen))
        {
            _windowOrder.Add(window.Id);
            string name = $"group {group} tce table #{window.Slot} [0x{window.Start:x}, 0x{window.Last:x}] " +
                $"({window.PageSize:x} pages, 0x{window.Entries:x} entries, {window.Levels} level(s))";
            seen = new TceWindowSizing(name, window.Entries, 0, window.ChargedBytes);
        }
        _windows[window.Id] = seen with { PeakValid = Math.Max(seen.PeakValid, window.ValidEntries) };
    }

    private void SampleDomain(LabDomain d)
    {
        if (!_domains.TryGetValue(d.Name, out DomainSizing? seen))
        {
            _domainOrder.Add(d.Name);
            seen = new DomainSizing(d.Name, d.MinPageSize, 0, [], 0);
        }
        _domains[d.Name] = seen with
        {
            PeakEntries = Math.Max(seen.PeakEntries, d.Entries),
            EntriesAtPeak = d.Entries > seen.PeakEntries || seen.EntriesAtPeak.Count == 0 ? d.EntriesByPageSize : seen.EntriesAtPeak,
            PeakTablePages = Math.Max(seen.PeakTablePages, d.PageTablePages),
        };
    }
}
