using System.Numerics;

namespace VfioLab.Scenarios.Planning;

/// <summary>
/// The rules that turn a laid-out plan into numbers, each stated with the numbers it used, and the comparison with
/// what the model measured running the plan's scenario (its <see cref="SizingReport"/>) and with libvirt's limit.
/// </summary>
internal static class PlanRules
{
    /// <summary>The IOPTE sizes of each host IOMMU's paging domain, as the model's hardware profiles have them:
    /// VT-d and SMMUv3 (4 KiB granule) 4K|2M|1G; AMD-Vi v1 every power of two from 4 KiB to 2^51 but 512 GiB.</summary>
    public static ulong PageSizes(string iommu) => iommu == "amd-vi"
        ? (((1UL << 52) - 1) & ~((1UL << 12) - 1)) ^ (1UL << 39)
        : (1UL << 12) | (1UL << 21) | (1UL << 30);

    public static VmPlanReport Report(PlanLayout layout, string yaml, ScenarioOutcome? outcome, string? notRun)
    {
        VmPlan plan = layout.Plan;
        SizingReport? measured = outcome?.Sizing;
        var figures = new List<PlanFigure>();

        // locked_vm: one process, every container's charges.
        ulong locked = 0;
        var parts = new List<string>();
        foreach (PlanContainer c in layout.Containers)
        {
            if (c.HasDomain)
            {
                ulong ram = c.Mappings.Where(m => m.Charged).Aggregate(0UL, (s, m) => s + m.Size);
                locked += ram;
                parts.Add($"container {c.Index}: {Planner.Bytes(ram)} of RAM{(plan.VirtioMem is null ? string.Empty : " and plugged virtio-mem")} pinned and charged at MAP_DMA");
            }
            else
            {
                ulong pins = c.Devices.Aggregate(0UL, (s, i) => s + plan.Devices[i].PinnedBytes);
                locked += pins;
                parts.Add($"container {c.Index}: no IOMMU domain (mediated devices only), so MAP_DMA pins nothing; the vendor driver's vfio_pin_pages charges {Planner.Bytes(pins)}, page by page");
            }
        }
        string lockRule = "type1 charges each PAGE_SIZE page it pins to the mapper's locked_vm once per mapping, hence once per container "
            + "(vfio_pin_pages_remote, vfio_lock_acct); BARs are PFNMAP and never charged; " + string.Join("; ", parts)
            + $" = {Planner.Bytes(locked)}";
        ProcessSizing? qemu = measured?.Processes.FirstOrDefault(p => p.Name.StartsWith("qemu[", StringComparison.Ordinal));
        figures.Add(new PlanFigure("process qemu", "locked_vm_bytes", locked, qemu?.PeakLockedBytes, null, lockRule));

        var measuredDomains = measured?.Domains ?? [];
        int domainIndex = 0;
        ulong pageSizes = PageSizes(plan.HostIommu);
        foreach (PlanContainer c in layout.Containers)
        {
            int ram = c.Mappings.Count(m => m.Kind == "ram");
            int vmem = c.Mappings.Count(m => m.Kind == "virtio-mem");
            int bars = c.Mappings.Count(m => m.Kind == "bar");
            ContainerSizing? mc = measured?.Containers.FirstOrDefault(x => x.Id == c.Index);
            figures.Add(new PlanFigure($"container {c.Index}", "dma_entries", (ulong)c.Mappings.Count, mc?.PeakMappings, plan.DmaEntryLimit,
                $"one vfio_dma per section the listener maps: {ram} RAM section(s) + {vmem} virtio-mem block(s) (each plugged block mapped alone) + {bars} BAR(s) for peer-to-peer = {c.Mappings.Count}, against dma_entry_limit {plan.DmaEntryLimit}"));
            if (!c.HasDomain)
            {
                continue;
            }
            var runs = new List<(ulong Start, ulong Last, ulong PageSize)>();
            foreach (PlannedMapping m in c.Mappings.OrderBy(m => m.Iova))
            {
                IopteMath.Split(m.Iova, m.PhysOffset, m.Size, m.Contiguity, pageSizes, runs);
            }
            var bySize = runs.GroupBy(r => r.PageSize).OrderBy(g => g.Key)
                .Select(g => (Size: g.Key, Count: g.Aggregate(0UL, (s, r) => s + ((r.Last - r.Start + 1) / r.PageSize)))).ToList();
            ulong total = bySize.Aggregate(0UL, (s, x) => s + x.Count);
            DomainSizing? md = domainIndex < measuredDomains.Count ? measuredDomains[domainIndex] : null;
            string subject = $"domain of container {c.Index}";
            string split = string.Join(" + ", bySize.Select(x => $"{SizingReport.PageSize(x.Size)} x {x.Count}"));
            figures.Add(new PlanFigure(subject, "ioptes", total, md?.PeakEntries, null,
                $"iommu_map splits each mapping into the largest IOMMU page (of 0x{pageSizes:x}) that the remaining length, the IOVA's and the physical address's alignment and the backing's contiguity ({Contiguity(layout)}) allow: {split}"));
            foreach ((ulong size, ulong count) in bySize)
            {
                ulong? atPeak = md?.EntriesAtPeak.Where(e => e.Key == size).Select(e => (ulong?)e.Value).FirstOrDefault() ?? (md is null ? null : 0);
                figures.Add(new PlanFigure(subject, $"ioptes_{SizingReport.PageSize(size)}", count, atPeak, null, $"{count} leaf entries of {SizingReport.PageSize(size)}"));
            }
            ulong granule = 1UL << BitOperations.TrailingZeroCount(pageSizes);
            ulong tables = IopteMath.TablePages([.. runs.OrderBy(r => r.Start)], granule);
            figures.Add(new PlanFigure(subject, "page_table_bytes", tables * granule, md?.PeakTableBytes, null,
                $"a radix table of 8-byte entries in {SizingReport.PageSize(granule)} tables, deep enough for a 48-bit IOVA; a leaf sits in the level whose entries span its size and needs one table on each level above: {tables} table(s) x {Planner.Bytes(granule)}"));
            domainIndex++;
        }
        return new VmPlanReport(plan, [.. layout.Containers.SelectMany(c => c.Mappings)], figures, Libvirt(plan, locked), yaml,
            outcome?.Passed ?? false, outcome is null ? [notRun!] : [.. outcome.Steps.Where(s => !s.Passed).Select(s => s.ToString())]);
    }

    private static string Contiguity(PlanLayout layout) => PlanLayout.BackingPage(layout.Plan.Backing, layout.Plan.HostPageSize) switch
    {
        ulong.MaxValue => "hugetlb pages physically consecutive",
        ulong page => $"{SizingReport.PageSize(page)} blocks",
    };

    /// <summary>libvirt's RLIMIT_MEMLOCK for a VM with VFIO devices (qemuDomainGetMemLockLimitBytes).</summary>
    private static LibvirtComparison Libvirt(VmPlan plan, ulong needed)
    {
        ulong memory = plan.RamBytes + (plan.VirtioMem?.RegionBytes ?? 0);
        ulong factor = plan.VIommu ? (ulong)plan.Devices.Count : 1;
        ulong limit = (memory * factor) + (1UL << 30);
        string formula = $"{(plan.VirtioMem is null ? "guest memory" : "guest memory with the virtio-mem region")} {Planner.Bytes(memory)}"
            + (plan.VIommu ? $" x {factor} VFIO device(s) (each with an address space of its own under the vIOMMU; libvirt >= 8.7.0)" : " x 1 (no vIOMMU)")
            + $" + 1 GiB = {Planner.Bytes(limit)}";
        string verdict = limit >= needed
            ? $"libvirt over-provisions by {Planner.Bytes(limit - needed)}"
                + (plan.Devices.Any(d => d.Mediated) ? "; mediated devices pin on demand, so most of what it allows is never charged" : string.Empty)
            : $"libvirt under-provisions by {Planner.Bytes(needed - limit)}: the VM fails with ENOMEM from MAP_DMA";
        return new LibvirtComparison(limit, formula, needed, verdict);
    }
}
