namespace VfioLab.Scenarios.Conformance;

/// <summary>One device of a scenario, as a real machine must offer it.</summary>
/// <param name="Name">The scenario's name for it.</param>
/// <param name="Address">Its PCI address (or mdev UUID) in the scenario.</param>
/// <param name="Driver"><c>vfio-pci</c>, <c>mdev</c> or <c>host</c>.</param>
/// <param name="Group">Its IOMMU group number as written, or null (a group of its own).</param>
/// <param name="Bars">Each BAR's index and size.</param>
/// <param name="BehindOtherIommu">Whether it sits behind an IOMMU of its own (<c>iommu:</c>) or with other page sizes.</param>
public sealed record TopologyDevice(string Name, string Address, string Driver, int? Group,
    IReadOnlyList<KeyValuePair<int, ulong>> Bars, bool BehindOtherIommu);
