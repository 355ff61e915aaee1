namespace VfioLab.Iommu;

/// <summary>
/// The type of an IOVA reserved region: the kernel's <c>enum iommu_resv_type</c>
/// (<c>include/linux/iommu.h</c>). Scenario spellings: msi, direct, direct-relaxable, reserved, sw-msi.
/// </summary>
internal enum ReservedRegionType
{
    /// <summary>IOMMU_RESV_DIRECT: must be identity mapped (an RMRR); a hole in type1's IOVA list.</summary>
    Direct,

    /// <summary>IOMMU_RESV_DIRECT_RELAXABLE: identity mapped by default but may be given up for
    /// device assignment (USB/graphics RMRRs); NOT a hole in type1's IOVA list (spec §2.8).</summary>
    DirectRelaxable,

    /// <summary>IOMMU_RESV_RESERVED: never usable for DMA (e.g. AMD's HyperTransport hole).</summary>
    Reserved,

    /// <summary>IOMMU_RESV_MSI: hardware MSI doorbell window, translated by interrupt remapping, not the page table.</summary>
    Msi,

    /// <summary>IOMMU_RESV_SW_MSI: software-managed MSI window (ARM): the IOMMU maps the doorbell here (MSI cookie).</summary>
    SwMsi,
}

/// <summary>Parsing and formatting of <see cref="ReservedRegionType"/> in the scenario spelling.</summary>
internal static class ReservedRegionTypeNames
{
    /// <summary>Parses <c>msi</c>, <c>direct</c>, <c>direct-relaxable</c>, <c>reserved</c>, <c>sw-msi</c>.</summary>
    public static bool TryParse(string name, out ReservedRegionType type)
    {
        switch (name)
        {
            case "msi": type = ReservedRegionType.Msi; return true;
            case "direct": type = ReservedRegionType.Direct; return true;
            case "direct-relaxable": type = ReservedRegionType.DirectRelaxable; return true;
            case "reserved": type = ReservedRegionType.Reserved; return true;
            case "sw-msi": type = ReservedRegionType.SwMsi; return true;
            default: type = default; return false;
        }
    }

    /// <summary>The scenario spelling of <paramref name="type"/>.</summary>
    public static string ToName(this ReservedRegionType type) => type switch
    {
        ReservedRegionType.Msi => "msi",
        ReservedRegionType.Direct => "direct",
        ReservedRegionType.DirectRelaxable => "direct-relaxable",
        ReservedRegionType.Reserved => "reserved",
        ReservedRegionType.SwMsi => "sw-msi",
        _ => type.ToString(),
    };
}
