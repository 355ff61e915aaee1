namespace VfioLab.Scenarios.Model;

/// <summary>Which driver a device is bound to: vfio-pci, an mdev vendor driver (emulated IOMMU, pins pages), or a host kernel driver (group not viable).</summary>
internal enum DeviceDriverKind
{
    VfioPci,
    Mdev,
    Host,
}
