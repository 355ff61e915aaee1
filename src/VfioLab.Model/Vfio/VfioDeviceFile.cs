using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// An open device fd (vfio_device_fops in vfio_main.c): every ioctl, read, write and mmap goes to the
/// device's driver; the last close of the device closes the driver and releases the container use.
/// </summary>
internal sealed class VfioDeviceFile(VfioDevice device) : VfioFileOperations
{
    /// <summary>The device behind the file.</summary>
    public VfioDevice Device { get; } = device;

    /// <inheritdoc />
    protected override long Dispatch(SyscallContext ctx, uint request, ref IoctlArgument arg) =>
        Device.Driver.Ioctl(new VfioCallContext(ctx), Device, request, ref arg);

    /// <inheritdoc />
    public override long Mmap(SyscallContext ctx, MmapRequest request) => Device.Driver.Mmap(new VfioCallContext(ctx), Device, request);

    /// <inheritdoc />
    public override long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => Device.Driver.Read(Device, destination, offset);

    /// <inheritdoc />
    public override long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => Device.Driver.Write(Device, source, offset);

    private int _closed;

    /// <inheritdoc />
    public override void Release() => Detach();

    /// <summary>Closes the device for this file now, although mappings still hold the file (a release the
    /// host forces); the file's own release later does nothing. Returns false when it was already closed.</summary>
    public bool Detach()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return false;
        }
        Device.CloseFile();
        return true;
    }
}
