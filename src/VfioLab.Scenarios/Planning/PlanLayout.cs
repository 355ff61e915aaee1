namespace VfioLab.Scenarios.Planning;

/// <summary>
/// A <see cref="VmPlan"/> laid out: which devices share which container, the guest-physical place of RAM, the
/// virtio-mem region and every BAR, and the map sequence of each container (<see cref="PlannedMapping"/>). Without a
/// vIOMMU every device sits in the one address space of the guest, so QEMU opens one container; with one, each
/// device has an address space and so a container of its own (hw/vfio/container.c: a container per address space).
/// </summary>
internal sealed class PlanLayout
{
    /// <summary>Where the VMM's RAM, virtio-mem and BAR mmaps are placed in its own address space (1 GiB aligned,
    /// far apart, below TASK_SIZE).</summary>
    public const ulong RamVaddr = 0x100000000000;
    public const ulong VirtioMemVaddr = 0x300000000000;

    /// <summary>The AMD HyperTransport window QEMU keeps guest RAM out of on AMD hosts (hw/i386/pc.c,
    /// <c>pc_set_amd_above_4g_mem_start</c>): above-4G RAM that would reach it starts at 1 TiB instead.</summary>
    public const ulong AmdHtStart = 0xfd00000000;

    public PlanLayout(VmPlan plan)
    {
        Plan = plan;
        ulong backingPage = BackingPage(plan.Backing, plan.HostPageSize);
        foreach ((ulong iova, ulong size, ulong offset, string label) in GuestLayout.RamSections(plan.Machine, plan.RamBytes))
        {
            ulong at = iova;
            if (iova == GuestLayout.FourG && plan.HostIommu == "amd-vi" && iova + size > AmdHtStart)
            {
                at = 1UL << 40;
            }
            RamSections.Add(new PlannedMapping(0, at, size, "ram", at == iova ? label : label + " (moved to 1 TiB past the AMD HyperTransport hole)", true)
            {
                Contiguity = backingPage,
                Source = "ram",
                SourceOffset = offset,
                PhysOffset = offset,
            });
        }
        ulong top = RamSections.Max(s => s.Iova + s.Size);
        top = GuestLayout.AlignUp(top, 1UL << 30);
        if (plan.VirtioMem is { } vmem)
        {
            VirtioMemBase = top;
            ulong blocks = vmem.PluggedBytes / vmem.BlockBytes;
            for (ulong b = 0; b < blocks; b++)
            {
                VirtioMemBlocks.Add(new PlannedMapping(0, top + (b * vmem.BlockBytes), vmem.BlockBytes, "virtio-mem", $"virtio-mem block {b}", true)
                {
                    Contiguity = Math.Min(backingPage, vmem.BlockBytes),
                    Source = "vmem",
                    SourceOffset = b * vmem.BlockBytes,
                    PhysOffset = GuestLayout.AlignUp(plan.RamBytes, Math.Min(backingPage, 1UL << 30)) + (b * vmem.BlockBytes),
                });
            }
            top = GuestLayout.AlignUp(top + vmem.RegionBytes, 1UL << 30);
        }
        // 64-bit BARs above everything, largest first, each naturally aligned (what firmware's allocator does).
        var bars = plan.Devices.Select((d, i) => (Device: d, Index: i))
            .Where(x => !x.Device.Mediated)
            .SelectMany(x => x.Device.BarSizes.Select((size, b) => (x.Device, x.Index, Bar: b, Size: size)))
            .OrderByDescending(x => x.Size).ThenBy(x => x.Index).ThenBy(x => x.Bar);
        foreach (var bar in bars)
        {
            ulong at = GuestLayout.AlignUp(top, bar.Size);
            Bars.Add(new PlannedMapping(0, at, bar.Size, "bar", $"{bar.Device.Name} BAR{bar.Bar * 2}", false)
            {
                Contiguity = bar.Size,
                Source = $"bar:{bar.Index}:{bar.Bar * 2}",
            });
            top = at + bar.Size;
        }
        Bars.Sort((a, b) => a.Iova.CompareTo(b.Iova));

        IReadOnlyList<IReadOnlyList<int>> groups = plan.VIommu
            ? [.. plan.Devices.Select((_, i) => (IReadOnlyList<int>)[i])]
            : [[.. Enumerable.Range(0, plan.Devices.Count)]];
        for (int c = 0; c < groups.Count; c++)
        {
            // Numbered from 1, as the model numbers the containers a fresh host opens.
            bool domain = groups[c].Any(i => !plan.Devices[i].Mediated);
            Containers.Add(new PlanContainer(c + 1, groups[c], domain,
                [.. RamSections.Concat(VirtioMemBlocks).Concat(Bars).Select(m => m with { Container = c + 1, Charged = domain && m.Kind != "bar" })]));
        }
    }

    public VmPlan Plan { get; }

    public List<PlannedMapping> RamSections { get; } = [];

    public List<PlannedMapping> VirtioMemBlocks { get; } = [];

    public ulong VirtioMemBase { get; }

    public List<PlannedMapping> Bars { get; } = [];

    public List<PlanContainer> Containers { get; } = [];

    /// <summary>The physically contiguous unit of each backing: hugetlb pages are taken as physically consecutive (a
    /// pool reserved at boot, as on the model's fresh host), so only alignment bounds their IOPTEs; THP memory is
    /// contiguous in 2 MiB blocks and memory without huge pages in single pages (the model scatters such memory in
    /// runs of that size, as a long-running host does).</summary>
    public static ulong BackingPage(RamBacking backing, ulong hostPage) => backing switch
    {
        RamBacking.Thp => Math.Max(2UL << 20, hostPage),
        RamBacking.Hugetlb2M or RamBacking.Hugetlb1G => ulong.MaxValue,
        _ => hostPage,
    };
}

/// <summary>One container of a plan: the devices (by index) whose groups it holds, whether an IOMMU domain backs it
/// (a passthrough device; a container of mediated devices only has none), and its map sequence.</summary>
internal sealed record PlanContainer(int Index, IReadOnlyList<int> Devices, bool HasDomain, IReadOnlyList<PlannedMapping> Mappings);
