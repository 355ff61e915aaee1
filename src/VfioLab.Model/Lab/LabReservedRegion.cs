namespace VfioLab.Lab;

/// <summary>One IOVA range a device's IOMMU group reserves (<c>iommu_get_group_resv_regions</c>), as the group's
/// <c>reserved_regions</c> file lists it: inclusive bounds and a kind.</summary>
/// <param name="Start">The first IOVA of the range.</param>
/// <param name="Last">The last IOVA of the range (inclusive).</param>
/// <param name="Kind">What the range is reserved for.</param>
public readonly record struct LabReservedRegion(ulong Start, ulong Last, ReservedRegionKind Kind);
