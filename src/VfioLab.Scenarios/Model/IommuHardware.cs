namespace VfioLab.Scenarios.Model;

/// <summary>An IOMMU hardware profile named in a scenario (<c>vt-d</c>, <c>amd-vi</c>, <c>smmu-v3</c>, <c>spapr-tce</c>).</summary>
internal enum IommuHardware
{
    VtD,
    AmdVi,
    SmmuV3,
    SpaprTce,
}
