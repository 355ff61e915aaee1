namespace VfioLab.Abi;

/// <summary>
/// Which file and which code answers an ioctl. Request codes are reused across targets (0x3B70 is
/// <c>VFIO_IOMMU_GET_INFO</c>, <c>VFIO_IOMMU_SPAPR_TCE_GET_INFO</c> and <c>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO</c>),
/// so naming a code needs its target.
/// </summary>
public enum VfioIoctlTarget
{
    /// <summary>The container fd (<c>/dev/vfio/vfio</c>), answered by the VFIO core.</summary>
    Container,
    /// <summary>A group fd (<c>/dev/vfio/N</c>).</summary>
    Group,
    /// <summary>A device fd, answered by the device's bus driver (vfio-pci for the PCI ioctls).</summary>
    Device,
    /// <summary>The container fd, passed on to the type1 IOMMU backend.</summary>
    Type1,
    /// <summary>The container fd, passed on to the sPAPR TCE IOMMU backend (and its EEH support).</summary>
    Spapr,
}
