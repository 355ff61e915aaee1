using VfioLab.Abi;

namespace VfioLab.Vfio;

/// <summary>
/// One container's backend state (the <c>iommu_data</c> behind struct vfio_iommu_driver_ops):
/// groups attach to it, and every container ioctl the core does not handle is passed to it.
/// </summary>
internal interface IVfioIommu
{
    /// <summary>CHECK_EXTENSION with this state: 0 or positive.</summary>
    long CheckExtension(ulong extension);

    /// <summary>Container ioctls after SET_IOMMU; unknown requests answer ENOTTY.</summary>
    long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument);

    /// <summary>attach_group; any failure leaves the state exactly as before. <paramref name="current"/>
    /// is the process whose ioctl attaches the group (type1 replays mappings by pinning from its mm),
    /// or null when no process is calling (host set-up, tests).</summary>
    Errno AttachGroup(VfioGroup group, Host.Process? current);

    /// <summary>detach_group; never fails.</summary>
    void DetachGroup(VfioGroup group);

    /// <summary>release: the last group left; every mapping, pin and charge goes.</summary>
    void Release();

    /// <summary>register_device: an opened device that pins pages through the backend (mdev).</summary>
    void RegisterDevice(VfioDevice device);

    /// <summary>unregister_device.</summary>
    void UnregisterDevice(VfioDevice device);
}
