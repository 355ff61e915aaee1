namespace VfioLab.Scenarios.Model;

/// <summary>The type of an IOMMU reserved region (kernel <c>enum iommu_resv_type</c>).</summary>
internal enum ReservedRegionKind
{
    Msi,
    Direct,
    DirectRelaxable,
    Reserved,
    SwMsi,
}
