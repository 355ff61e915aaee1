namespace VfioLab.Scenarios.Model;

/// <summary>
/// A device of the scenario's <c>devices:</c> list. <c>Address</c> is the Linux device name (PCI
/// address <c>0000:01:00.0</c>, or the mdev's UUID); <c>Group</c> null means a group of its own;
/// <c>Iommu</c> null means the host's IOMMU; <c>Function</c> is the PCI function's description (null for an mdev).
/// </summary>
internal sealed record DeviceSpec(
    string Name,
    string Address,
    DeviceDriverKind Driver,
    int? Group,
    IReadOnlyList<BarSpec> Bars,
    bool IsolatedMsi,
    bool Misbehaving,
    IommuHardware? Iommu,
    IReadOnlyList<ulong>? IommuPageSizes,
    bool Coherent,
    SourceLocation Location,
    PciFunctionSpec? Function = null);
