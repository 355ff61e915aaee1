using VfioLab.Abi;

namespace VfioLab.Vfio;

/// <summary>
/// An IOMMU backend as the VFIO core registers it (struct vfio_iommu_driver_ops): answers
/// CHECK_EXTENSION before a container has chosen it, and opens per-container state on SET_IOMMU.
/// </summary>
internal interface IVfioIommuDriver
{
    /// <summary>The backend's name (<c>vfio-iommu-type1</c>, <c>vfio-iommu-spapr-tce</c>).</summary>
    string Name { get; }

    /// <summary>Whether the backend may serve a no-IOMMU container (vfio_iommu_driver_allowed).</summary>
    bool ServesNoIommu { get; }

    /// <summary>CHECK_EXTENSION with no container state (the ops->ioctl(NULL, ...) probe): 0 or positive.</summary>
    long CheckExtension(ulong extension);

    /// <summary>ops->open: creates the container's backend state for IOMMU type <paramref name="type"/>.</summary>
    Errno Open(ulong type, VfioContainer container, out IVfioIommu? state);
}
