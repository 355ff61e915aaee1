using System.Globalization;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Conformance;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// The guest a scenario needs, derived from its host section and devices: every vfio-pci device an edu (the rig's
/// device with a DMA engine), one IOMMU group per scenario group (a group of several devices the functions of one
/// multifunction slot), the module parameters, hugetlb pages. Scenarios with the same <see cref="Key"/> share a boot.
/// </summary>
internal sealed record RigPlan(string DeviceSpec, IReadOnlyList<string> Params, IReadOnlyList<string> Append, IReadOnlyList<(string Address, int Group)> Devices)
{
    /// <summary>2 MiB pages reserved in the guest when a scenario maps hugetlb memory (64 MiB).</summary>
    public const int HugePages = 32;

    /// <summary>What decides the boot: devices, module parameters, kernel command line.</summary>
    public string Key => $"{DeviceSpec}|{MachineKey}";

    /// <summary>What decides the boot but the devices.</summary>
    public string MachineKey => $"{string.Join(',', Params)}|{string.Join(' ', Append)}";

    /// <summary>Whether this plan's guest is a prefix of <paramref name="other"/>'s (same parameters, the same devices
    /// first): the scenario runs in that guest too, its devices mapped in order onto the first ones.</summary>
    public bool FitsIn(RigPlan other) =>
        MachineKey == other.MachineKey && (other.DeviceSpec == DeviceSpec || other.DeviceSpec.StartsWith(DeviceSpec + ",", StringComparison.Ordinal));

    /// <summary>The plan for <paramref name="doc"/>, or null with the reason the rig cannot realise it.</summary>
    public static RigPlan? For(ScenarioDocument doc, out string? reason)
    {
        ScenarioTopology t = ScenarioConformance.Describe(doc);
        reason = Refusal(t);
        if (reason is not null)
        {
            return null;
        }
        var groups = new List<List<TopologyDevice>>();
        foreach (TopologyDevice d in t.Devices)
        {
            List<TopologyDevice>? same = groups.FirstOrDefault(g => g[0].Group == d.Group);
            if (same is null)
            {
                groups.Add([d]);
            }
            else
            {
                same.Add(d);
            }
        }
        string spec = groups.Count == 0 ? "edu" : string.Join(',', groups.Select(g => g.Count == 1 ? "edu" : "slot:" + string.Join('+', g.Select(_ => "edu"))));
        var parameters = new List<string>();
        if (t.DmaEntryLimit != 65535)
        {
            parameters.Add($"vfio_iommu_type1.dma_entry_limit={t.DmaEntryLimit.ToString(CultureInfo.InvariantCulture)}");
        }
        if (t.DisableHugepages)
        {
            parameters.Add("vfio_iommu_type1.disable_hugepages=1");
        }
        // Every guest reserves the hugetlb pool (64 MiB of 2 GiB), so scenarios with and without hugetlb share boots.
        var append = new List<string> { $"hugepages={HugePages.ToString(CultureInfo.InvariantCulture)}" };
        return new RigPlan(spec, parameters, append, [.. groups.SelectMany(g => g).Select(d => (d.Address, d.Group!.Value))]);
    }

    private static string? Refusal(ScenarioTopology t)
    {
        if (t.Iommu == "spapr-tce")
        {
            return "sPAPR: the rig boots x86 guests, whose IOMMUs are type1 only";
        }
        if (t.Iommu != "vt-d")
        {
            return $"iommu {t.Iommu}: the rig's guests have VT-d or virtio-iommu (write vt-d; --iommu picks the guest's)";
        }
        if (t.PageSize != RigMachine.PageSize)
        {
            return $"page_size {t.PageSize / 1024} KiB: the rig's x86 guests have 4 KiB pages";
        }
        if (t.Memory > RigMachine.GuestMemory)
        {
            return $"memory {t.Memory >> 20} MiB: beyond the guest's {RigMachine.GuestMemory >> 20} MiB";
        }
        if (t.Quirks.Count > 0)
        {
            return $"quirks {string.Join(", ", t.Quirks)}: historical behaviours no booted kernel has";
        }
        foreach (TopologyDevice d in t.Devices)
        {
            if (d.Driver != "vfio-pci")
            {
                return $"device {d.Name}: driver {d.Driver}; the rig binds only vfio-pci devices";
            }
            if (d.Group is null)
            {
                return $"device {d.Name}: no group; the rig maps scenario groups onto the guest's, so each device needs one";
            }
            if (d.BehindOtherIommu)
            {
                return $"device {d.Name}: an IOMMU or page sizes of its own; the guest has one IOMMU";
            }
            if (d.Bars.Count != 1 || d.Bars[0].Key != 0 || d.Bars[0].Value != RigMachine.EduBar0)
            {
                return $"device {d.Name}: BARs {string.Join(", ", d.Bars.Select(b => $"{b.Key}: 0x{b.Value:x}"))}; the edu has BAR0 of 1 MiB and no other";
            }
        }
        return null;
    }
}
