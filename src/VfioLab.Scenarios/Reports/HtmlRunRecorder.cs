using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Reports;

/// <summary>
/// Watches one scenario run for the HTML report: after every step, <c>locked_vm</c> of each process against its
/// limit, the DMA mappings of each container against <c>dma_entry_limit</c> and each domain's IOPTEs by page size
/// (all through the model's public inspection, cost per sample following processes, containers and page-table runs);
/// a snapshot of each container's IOVA map when it changed (at most about <see cref="MaxSnapshots"/> per run, the
/// last step always); the steps themselves with their outcomes, problems and violations.
/// </summary>
internal sealed class HtmlRunRecorder(PreparedScenario prepared) : IScenarioReporter
{
    /// <summary>IOVA-map snapshots kept per run: a map is a row of the picture, and a row per step of a long run
    /// would neither draw nor read.</summary>
    public const int MaxSnapshots = 200;

    private int _lastSnapshotStep = -1;
    private int _snapshotEvery = 1;

    public ScenarioDocument Document { get; } = prepared.Document;

    public List<StepReport> Steps { get; } = [];

    public SortedDictionary<string, HtmlSeries> LockedVm { get; } = new(StringComparer.Ordinal);

    public SortedDictionary<int, HtmlSeries> DmaEntries { get; } = [];

    /// <summary>Per domain, per step: IOPTEs by page size.</summary>
    public Dictionary<string, List<(int Step, IReadOnlyList<KeyValuePair<ulong, ulong>> BySize)>> Ioptes { get; } = new(StringComparer.Ordinal);

    public List<string> DomainOrder { get; } = [];

    public SortedDictionary<int, List<HtmlMapSnapshot>> Maps { get; } = [];

    public ScenarioOutcome? Outcome { get; private set; }

    /// <summary>The IOMMU's reserved regions and aperture as the host was described (the profile's own and the
    /// scenario's additions), for the map's background.</summary>
    public IReadOnlyList<(ulong Start, ulong Last, string Kind)> Reserved { get; } = ReservedOf(prepared.Document.Host);

    public (ulong Start, ulong Last) Aperture { get; } = ApertureOf(prepared.Document.Host);

    public void Started(string name, string description, int steps)
    {
        _snapshotEvery = Math.Max(1, steps / MaxSnapshots);
    }

    public void StepFinished(StepReport report)
    {
        Steps.Add(report);
        int step = report.Index;
        LabHost host = prepared.Host;
        foreach (LabProcess p in host.Processes)
        {
            if (!LockedVm.TryGetValue(p.ToString(), out HtmlSeries? s))
            {
                LockedVm[p.ToString()] = s = new HtmlSeries(p.CapIpcLock ? null : p.MemlockLimitBytes);
            }
            s.Add(step, p.LockedVmBytes);
            s.Limit = p.CapIpcLock || p.MemlockLimitBytes == LabHostBuilder.Unlimited ? null : p.MemlockLimitBytes;
        }
        IReadOnlyList<LabContainer> containers = host.Containers;
        foreach (LabContainer c in containers)
        {
            if (c.DmaAvail is not { } avail)
            {
                continue;
            }
            if (!DmaEntries.TryGetValue(c.Id, out HtmlSeries? s))
            {
                DmaEntries[c.Id] = s = new HtmlSeries(null);
            }
            s.Add(step, c.MappingCount);
            s.Limit = c.MappingCount + avail;
        }
        foreach (LabDevice d in host.Devices)
        {
            if (d.Domain is { } domain)
            {
                if (!Ioptes.TryGetValue(domain.Name, out var list))
                {
                    Ioptes[domain.Name] = list = [];
                    DomainOrder.Add(domain.Name);
                }
                if (list.Count == 0 || list[^1].Step != step)
                {
                    list.Add((step, domain.EntriesByPageSize));
                }
            }
        }
        bool last = step == Document.StepCount - 1;
        if (last || step - _lastSnapshotStep >= _snapshotEvery)
        {
            Snapshot(step, containers, host);
        }
    }

    public void Finished(ScenarioOutcome outcome) => Outcome = outcome;

    private void Snapshot(int step, IReadOnlyList<LabContainer> containers, LabHost host)
    {
        _lastSnapshotStep = step;
        foreach (LabContainer c in containers)
        {
            if (c.Backend != "type1")
            {
                continue;
            }
            LabDomain? domain = host.Devices.Where(d => c.Groups.Contains(d.IommuGroup)).Select(d => d.Domain).FirstOrDefault(d => d is not null);
            var bands = new List<HtmlBand>();
            foreach (LabMapping m in c.Mappings)
            {
                string kind = m.LockedPages > 0 || !m.IommuMapped || domain is null ? "ram" : "bar";
                string label = kind == "bar" ? BarName(host, domain!, m) : $"{(m.Writable ? "rw" : "r")} vaddr 0x{m.Vaddr:x}";
                HtmlBand band = new(m.Iova, m.Iova + m.Size - 1, kind, label, 1);
                if (bands.Count > 0 && bands[^1] is { } prev && prev.Kind == kind && kind == "ram" && prev.Last + 1 == band.Start)
                {
                    bands[^1] = prev with { Last = band.Last, Count = prev.Count + 1, Label = $"{prev.Count + 1} mappings" };
                }
                else
                {
                    bands.Add(band);
                }
            }
            if (!Maps.TryGetValue(c.Id, out List<HtmlMapSnapshot>? snaps))
            {
                Maps[c.Id] = snaps = [];
            }
            if (snaps.Count == 0 || !snaps[^1].Bands.SequenceEqual(bands) || step == Document.StepCount - 1)
            {
                snaps.Add(new HtmlMapSnapshot(step, bands));
            }
        }
    }

    /// <summary>The device BAR a peer-to-peer mapping reaches, by where its first IOVA translates.</summary>
    private static string BarName(LabHost host, LabDomain domain, LabMapping m)
    {
        if (domain.IovaToPhys(m.Iova) is { } phys)
        {
            foreach (LabDevice d in host.Devices)
            {
                for (int bar = 0; bar < 6; bar++)
                {
                    if (d.BarAddress(bar) is { } at && phys >= at && phys - at < m.Size)
                    {
                        return $"{d.Name} BAR{bar} (peer-to-peer)";
                    }
                }
            }
        }
        return "device memory (PFNMAP, not charged)";
    }

    private static List<(ulong, ulong, string)> ReservedOf(HostSpec host)
    {
        var list = new List<(ulong, ulong, string)>();
        switch (host.Iommu)
        {
            case IommuHardware.VtD:
                list.Add((0xfee00000, 0xfeefffff, "msi"));
                break;
            case IommuHardware.AmdVi:
                list.Add((0xfee00000, 0xfeefffff, "msi"));
                list.Add((0xfd00000000, 0xffffffffff, "reserved"));
                break;
            case IommuHardware.SmmuV3:
                list.Add((0x8000000, 0x80fffff, "sw-msi"));
                break;
        }
        foreach (ReservedRegionSpec r in host.ReservedRegions)
        {
            list.Add((r.Start, r.Last, r.Type.ToString().ToLowerInvariant()));
        }
        return list;
    }

    private static (ulong, ulong) ApertureOf(HostSpec host) => host.Aperture is { } a ? (a.Start, a.Last) : host.Iommu switch
    {
        IommuHardware.AmdVi => (0, ulong.MaxValue),
        IommuHardware.SpaprTce => (0, (2UL << 30) - 1),
        _ => (0, (1UL << 48) - 1),
    };
}

/// <summary>One value per step, and the limit it is judged against (null: none).</summary>
internal sealed class HtmlSeries(ulong? limit)
{
    public List<(int Step, ulong Value)> Points { get; } = [];

    public ulong? Limit { get; set; } = limit;

    public void Add(int step, ulong value) => Points.Add((step, value));
}

/// <summary>A container's IOVA map after a step: its mappings, neighbours of one kind merged into a band.</summary>
internal sealed record HtmlMapSnapshot(int Step, IReadOnlyList<HtmlBand> Bands);

/// <summary>An inclusive IOVA range of the map: <c>ram</c> (pinned memory) or <c>bar</c> (device memory).</summary>
internal sealed record HtmlBand(ulong Start, ulong Last, string Kind, string Label, int Count);
