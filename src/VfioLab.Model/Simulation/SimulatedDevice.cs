using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Vfio;

namespace VfioLab.Simulation;

/// <summary>One device of the simulated host: its hardware (a PCI function, or an mdev UUID), its
/// IOMMU group membership, and its VFIO device when bound to a VFIO driver.</summary>
internal sealed class SimulatedDevice(string name, IommuGroupMember member, IommuGroup group, PciFunction? function, VfioDevice? vfio)
{
    /// <summary>The scenario's name for the device.</summary>
    public string Name { get; } = name;

    /// <summary>The Linux device name: PCI address or mdev UUID.</summary>
    public string DeviceName => Member.Name;

    /// <summary>The IOMMU group membership and driver binding.</summary>
    public IommuGroupMember Member { get; } = member;

    /// <summary>The device's IOMMU group.</summary>
    public IommuGroup Group { get; } = group;

    /// <summary>The PCI function, or null for an mdev.</summary>
    public PciFunction? Function { get; } = function;

    /// <summary>The VFIO device, or null when bound to a host driver.</summary>
    public VfioDevice? Vfio { get; } = vfio;

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({DeviceName})";
}
