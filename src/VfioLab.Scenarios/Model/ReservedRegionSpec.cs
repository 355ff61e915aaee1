namespace VfioLab.Scenarios.Model;

/// <summary>An IOMMU reserved region added to the profile's own (kernel <c>struct iommu_resv_region</c>), inclusive.</summary>
internal sealed record ReservedRegionSpec(ulong Start, ulong Last, ReservedRegionKind Type, SourceLocation Location);
