using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>
/// One IOVA reserved region of a group: the kernel's <c>struct iommu_resv_region</c> as returned by
/// <c>iommu_get_group_resv_regions()</c>, an inclusive IOVA range with a type.
/// </summary>
internal readonly record struct ReservedRegion(ByteRange Range, ReservedRegionType Type)
{
    /// <summary>Whether type1 treats the region as a hole in its valid IOVA list: every type except
    /// DIRECT_RELAXABLE (spec §2.8, <c>vfio_iommu_resv_exclude</c>).</summary>
    public bool IsHoleForVfio => Type != ReservedRegionType.DirectRelaxable;

    /// <inheritdoc />
    public override string ToString() => $"{Range} {Type.ToName()}";
}
