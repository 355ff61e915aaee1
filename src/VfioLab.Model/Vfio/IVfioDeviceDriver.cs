using VfioLab.Abi;

namespace VfioLab.Vfio;

/// <summary>
/// A VFIO device driver's operations (struct vfio_device_ops): vfio-pci for PCI functions, a vendor
/// driver for mediated devices. The core calls open/close around the first and last device fd and
/// passes every device-fd ioctl, read, write and mmap through.
/// </summary>
internal interface IVfioDeviceDriver
{
    /// <summary>The driver name (<c>vfio-pci</c>, <c>mdev</c>).</summary>
    string Name { get; }

    /// <summary>Whether the device pins pages through the backend and takes unmap callbacks (ops->dma_unmap):
    /// such devices are registered with the backend while open.</summary>
    bool PinsPages { get; }

    /// <summary>ops->open_device, on the first fd.</summary>
    Errno OpenDevice(VfioDevice device);

    /// <summary>ops->close_device, after the last fd; never fails.</summary>
    void CloseDevice(VfioDevice device);

    /// <summary>Device-fd ioctls; unknown requests answer ENOTTY.</summary>
    long Ioctl(VfioCallContext context, VfioDevice device, uint request, ref IoctlArgument argument);

    /// <summary>f_op->mmap of a device region: creates a VM_PFNMAP VMA in the device's address space, or -errno.</summary>
    long Mmap(VfioCallContext context, VfioDevice device, Host.MmapRequest request);

    /// <summary>pread on the device fd at a region offset (<c>index &lt;&lt; 40</c> for vfio-pci).</summary>
    long Read(VfioDevice device, Span<byte> destination, ulong offset);

    /// <summary>pwrite on the device fd at a region offset.</summary>
    long Write(VfioDevice device, ReadOnlySpan<byte> source, ulong offset);
}
