namespace VfioLab.Abi;

/// <summary>
/// Extension and IOMMU-type ids of <c>linux/vfio.h</c>: the argument of <c>VFIO_CHECK_EXTENSION</c>, and (for the
/// IOMMU types) of <c>VFIO_SET_IOMMU</c>. Named like the C macros without <c>VFIO_</c>.
/// </summary>
public static class VfioExtension
{
    /// <summary><c>VFIO_TYPE1_IOMMU</c>: type1 v1 (unmap may split mappings).</summary>
    public const uint Type1Iommu = 1;

    /// <summary><c>VFIO_SPAPR_TCE_IOMMU</c>: sPAPR TCE v1.</summary>
    public const uint SpaprTceIommu = 2;

    /// <summary><c>VFIO_TYPE1v2_IOMMU</c>: type1 v2 (no bisection of mappings on unmap; dirty tracking).</summary>
    public const uint Type1v2Iommu = 3;

    /// <summary><c>VFIO_DMA_CC_IOMMU</c>: DMA is cache coherent (an extension, not a type).</summary>
    public const uint DmaCcIommu = 4;

    /// <summary><c>VFIO_EEH</c>: EEH error recovery is available (an extension).</summary>
    public const uint Eeh = 5;

    /// <summary><c>VFIO_TYPE1_NESTING_IOMMU</c>: type1 with nesting, implies v2 (removed in v6.13, then 0).</summary>
    public const uint Type1NestingIommu = 6;

    /// <summary><c>VFIO_SPAPR_TCE_v2_IOMMU</c>: sPAPR TCE v2 (pre-registration, dynamic windows).</summary>
    public const uint SpaprTceV2Iommu = 7;

    /// <summary><c>VFIO_NOIOMMU_IOMMU</c>: the unsafe no-IOMMU mode.</summary>
    public const uint NoiommuIommu = 8;

    /// <summary><c>VFIO_UNMAP_ALL</c>: UNMAP_DMA supports <see cref="DmaUnmapFlags.All"/> (v5.12+).</summary>
    public const uint UnmapAll = 9;

    /// <summary><c>VFIO_UPDATE_VADDR</c>: MAP/UNMAP support the VADDR flags (v5.12+).</summary>
    public const uint UpdateVaddr = 10;

    /// <summary>Every id with its C macro name, in order of value.</summary>
    public static IReadOnlyList<AbiConstant> All { get; } =
    [
        new("VFIO_TYPE1_IOMMU", Type1Iommu),
        new("VFIO_SPAPR_TCE_IOMMU", SpaprTceIommu),
        new("VFIO_TYPE1v2_IOMMU", Type1v2Iommu),
        new("VFIO_DMA_CC_IOMMU", DmaCcIommu),
        new("VFIO_EEH", Eeh),
        new("VFIO_TYPE1_NESTING_IOMMU", Type1NestingIommu),
        new("VFIO_SPAPR_TCE_v2_IOMMU", SpaprTceV2Iommu),
        new("VFIO_NOIOMMU_IOMMU", NoiommuIommu),
        new("VFIO_UNMAP_ALL", UnmapAll),
        new("VFIO_UPDATE_VADDR", UpdateVaddr),
    ];

    /// <summary>The id of the C macro <paramref name="name"/> (<c>VFIO_TYPE1v2_IOMMU</c>; case-sensitive).</summary>
    public static bool TryParse(string name, out uint id)
    {
        foreach (AbiConstant c in All)
        {
            if (string.Equals(c.CName, name, StringComparison.Ordinal))
            {
                id = (uint)c.Value;
                return true;
            }
        }
        id = 0;
        return false;
    }

    /// <summary>The C macro name of <paramref name="id"/>, if it is defined.</summary>
    public static bool TryGetName(uint id, out string name)
    {
        foreach (AbiConstant c in All)
        {
            if (c.Value == id)
            {
                name = c.CName;
                return true;
            }
        }
        name = "";
        return false;
    }
}
