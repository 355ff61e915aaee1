using System.Globalization;
using System.Text;

namespace VfioLab.Scenarios.Planning;

/// <summary>
/// Writes a laid-out plan as a v1 scenario (docs/scenario-format.md): the host, the devices, one process with no
/// memlock limit (so the run measures what is needed rather than failing at the limit), and the steps QEMU's VFIO
/// code would make — guest RAM (and the virtio-mem region) mmap'd, each container opened with its groups and a
/// type1v2 backend, the devices' BARs mmap'd, then per container every section mapped in IOVA order, and the
/// pins of mediated devices' vendor drivers. What <c>vfiolab plan --emit-scenario</c> prints and
/// <see cref="Planner"/> runs.
/// </summary>
internal static class ScenarioEmitter
{
    /// <summary>vfio_pin_pages takes at most PAGE_SIZE / sizeof(unsigned long) pages per call.</summary>
    private const ulong PinBatch = 512;

    public static string Emit(PlanLayout layout)
    {
        VmPlan plan = layout.Plan;
        var y = new StringBuilder();
        y.AppendLine("vfiolab: 1");
        y.AppendLine(CultureInfo.InvariantCulture, $"name: plan-{plan.Name}");
        y.AppendLine(CultureInfo.InvariantCulture, $"description: \"the map sequence vfiolab plan derives for VM {plan.Name}: {plan.Machine.ToString().ToLowerInvariant()}, {Size(plan.RamBytes)} of {BackingName(plan.Backing)} RAM, {plan.Devices.Count} device(s){(plan.VIommu ? ", vIOMMU" : string.Empty)}{(plan.VirtioMem is null ? string.Empty : ", virtio-mem")}\"");
        y.AppendLine("host:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  memory: {Size(HostMemory(plan))}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  page_size: {Size(plan.HostPageSize)}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  iommu: {plan.HostIommu}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  kernel: {plan.Kernel}");
        // The measured run must not stop at the limit the plan judges: it gets room for every mapping it makes.
        ulong entries = (ulong)layout.Containers.Select(c => c.Mappings.Count).DefaultIfEmpty(0).Max();
        y.AppendLine(CultureInfo.InvariantCulture, $"  params: {{ dma_entry_limit: {Math.Max(plan.DmaEntryLimit, entries)} }}");
        ulong run = PlanLayout.BackingPage(plan.Backing, plan.HostPageSize);
        y.AppendLine(run == ulong.MaxValue
            ? "  frames: { layout: contiguous }"
            : string.Create(CultureInfo.InvariantCulture, $"  frames: {{ layout: scattered, run_pages: {run / plan.HostPageSize}, seed: 1 }}"));
        y.AppendLine("devices:");
        for (int i = 0; i < plan.Devices.Count; i++)
        {
            PlannedDevice d = plan.Devices[i];
            if (d.Mediated)
            {
                y.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: {d.Name}, address: \"{MdevUuid(i)}\", driver: mdev, group: {i + 1} }}");
                continue;
            }
            string bars = string.Join(", ", d.BarSizes.Select((s, b) => $"{{ index: {b * 2}, size: {Size(s)}, prefetchable: true }}"));
            y.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: {d.Name}, address: \"{PciAddress(i)}\", group: {i + 1}, bars: [ {bars} ] }}");
        }
        y.AppendLine("processes:");
        y.AppendLine("  - { name: qemu, memlock: unlimited }");
        y.AppendLine("steps:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: {Size(plan.RamBytes)}, backing: {MmapBacking(plan.Backing)}, populate: true, at: 0x{PlanLayout.RamVaddr:x}, as: ram }}");
        if (plan.VirtioMem is { } vmem)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: {Size(vmem.RegionBytes)}, backing: {MmapBacking(plan.Backing)}, at: 0x{PlanLayout.VirtioMemVaddr:x}, as: vmem }}");
        }
        foreach (PlanContainer c in layout.Containers)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  - open: {{ path: /dev/vfio/vfio, as: c{c.Index} }}");
            foreach (int i in c.Devices)
            {
                y.AppendLine(CultureInfo.InvariantCulture, $"  - open: {{ path: /dev/vfio/{i + 1}, as: g{i} }}");
                y.AppendLine(CultureInfo.InvariantCulture, $"  - group_set_container: {{ fd: g{i}, container: c{c.Index} }}");
            }
            y.AppendLine(CultureInfo.InvariantCulture, $"  - set_iommu: {{ fd: c{c.Index}, type: VFIO_TYPE1v2_IOMMU }}");
            foreach (int i in c.Devices)
            {
                string name = plan.Devices[i].Mediated ? MdevUuid(i) : PciAddress(i);
                y.AppendLine(CultureInfo.InvariantCulture, $"  - get_device_fd: {{ fd: g{i}, name: \"{name}\", as: d{i} }}");
            }
        }
        for (int i = 0; i < plan.Devices.Count; i++)
        {
            for (int b = 0; b < plan.Devices[i].BarSizes.Count && !plan.Devices[i].Mediated; b++)
            {
                y.AppendLine(CultureInfo.InvariantCulture, $"  - mmap_region: {{ device_fd: d{i}, index: {b * 2}, size: {Size(plan.Devices[i].BarSizes[b])}, as: bar{i}_{b * 2} }}");
            }
        }
        foreach (PlanContainer c in layout.Containers)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  # container {c.Index}: {c.Mappings.Count} mapping(s)");
            foreach (PlannedMapping m in c.Mappings)
            {
                string vaddr = m.Source switch
                {
                    "ram" => Ref("ram", m.SourceOffset),
                    "vmem" => Ref("vmem", m.SourceOffset),
                    _ => "bar" + m.Source[4..].Replace(':', '_'),
                };
                y.AppendLine(CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: c{c.Index}, iova: 0x{m.Iova:x}, vaddr: {vaddr}, size: 0x{m.Size:x} }}");
            }
            foreach (int i in c.Devices.Where(i => plan.Devices[i].Mediated))
            {
                EmitPins(y, layout, i, plan.Devices[i].PinnedBytes / plan.HostPageSize);
            }
        }
        y.AppendLine("  - check: { invariants: clean }");
        return y.ToString();
    }

    /// <summary>The host's RAM: the guest's plus what virtio-mem plugs, plus 1 GiB for the host, in whole GiB.</summary>
    internal static ulong HostMemory(VmPlan plan) =>
        GuestLayout.AlignUp(plan.RamBytes + (plan.VirtioMem?.RegionBytes ?? 0) + (1UL << 30), 1UL << 30);

    internal static string PciAddress(int index) => $"0000:{index + 1:x2}:00.0";

    internal static string MdevUuid(int index) => $"00000000-0000-4000-8000-{index + 1:x12}";

    /// <summary>The vendor driver pins its working set from the start of guest RAM, section by section.</summary>
    private static void EmitPins(StringBuilder y, PlanLayout layout, int device, ulong pages)
    {
        ulong page = layout.Plan.HostPageSize;
        foreach (PlannedMapping s in layout.RamSections)
        {
            for (ulong at = 0; at < s.Size && pages > 0;)
            {
                ulong n = Math.Min(Math.Min(PinBatch, pages), (s.Size - at) / page);
                if (n == 0)
                {
                    break;
                }
                y.AppendLine(CultureInfo.InvariantCulture, $"  - pin_pages: {{ device: {layout.Plan.Devices[device].Name}, iova: 0x{s.Iova + at:x}, count: {n}, prot: rw }}");
                at += n * page;
                pages -= n;
            }
        }
    }

    private static string Ref(string name, ulong offset) => offset == 0 ? name : string.Create(CultureInfo.InvariantCulture, $"{name}+0x{offset:x}");

    private static string MmapBacking(RamBacking backing) => backing switch
    {
        RamBacking.Hugetlb2M => "hugetlb-2m",
        RamBacking.Hugetlb1G => "hugetlb-1g",
        RamBacking.Memfd => "shared",
        _ => "anonymous",
    };

    internal static string BackingName(RamBacking backing) => backing switch
    {
        RamBacking.Anonymous => "4k",
        RamBacking.Thp => "thp",
        RamBacking.Hugetlb2M => "hugetlb-2m",
        RamBacking.Hugetlb1G => "hugetlb-1g",
        _ => "memfd",
    };

    /// <summary>A size as the scenario format writes it: the largest binary unit that divides it, else hex.</summary>
    internal static string Size(ulong bytes)
    {
        foreach ((int shift, string unit) in new[] { (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB") })
        {
            if (bytes != 0 && bytes % (1UL << shift) == 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{bytes >> shift}{unit}");
            }
        }
        return string.Create(CultureInfo.InvariantCulture, $"0x{bytes:x}");
    }
}
