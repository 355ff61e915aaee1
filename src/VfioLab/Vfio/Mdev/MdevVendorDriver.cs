using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Vfio.Mdev;

/// <summary>
/// A mediated device's vendor driver (a vGPU, vfio-ccw, vfio-ap): no regions of its own in this
/// model, and — because it pins guest pages through the backend — registered with the container's
/// backend while open so it receives unmap callbacks. Pinning, the callback and <c>vfio_dma_rw</c>
/// arrive with the type1 backend; <see cref="Misbehaving"/> makes the driver ignore callbacks.
/// </summary>
internal sealed class MdevVendorDriver(bool misbehaving) : IVfioDeviceDriver
{
    /// <summary>Whether the driver ignores unmap notifications (to exercise the retry limit).</summary>
    public bool Misbehaving { get; } = misbehaving;

    /// <inheritdoc />
    public string Name => "mdev";

    /// <inheritdoc />
    public bool PinsPages => true;

    /// <inheritdoc />
    public Errno OpenDevice(VfioDevice device) => Errno.None;

    /// <inheritdoc />
    public void CloseDevice(VfioDevice device)
    {
    }

    /// <inheritdoc />
    public long Ioctl(VfioCallContext context, VfioDevice device, uint request, ref IoctlArgument argument)
    {
        if (request != VfioIoctl.DeviceGetInfo)
        {
            return Errno.ENOTTY.AsReturn();
        }
        return DeviceInfoReply.Answer(ref argument, DeviceInfoFlags.None, 0, 0);
    }

    /// <inheritdoc />
    public long Mmap(VfioCallContext context, VfioDevice device, MmapRequest request) => Errno.EINVAL.AsReturn();

    /// <inheritdoc />
    public long Read(VfioDevice device, Span<byte> destination, ulong offset) => Errno.EINVAL.AsReturn();

    /// <inheritdoc />
    public long Write(VfioDevice device, ReadOnlySpan<byte> source, ulong offset) => Errno.EINVAL.AsReturn();
}
