using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// An open device fd (vfio_device_fops in vfio_main.c): every ioctl, read, write and mmap goes to the
/// device's driver; the last close of the device closes the driver and releases the container use.
/// </summary>
internal sealed class VfioDeviceFile(VfioDevice device) : IFileOperations
{
    /// <summary>The device behind the file.</summary>
    public VfioDevice Device { get; } = device;

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg)
    {
        var ioctlArg = IoctlArgument.FromBuffer(arg, new ProcessUserMemory(ctx.Process));
        return Device.Driver.Ioctl(new VfioCallContext(ctx), Device, request, ref ioctlArg);
    }

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, ulong value)
    {
        var ioctlArg = IoctlArgument.FromValue(value, new ProcessUserMemory(ctx.Process));
        return Device.Driver.Ioctl(new VfioCallContext(ctx), Device, request, ref ioctlArg);
    }

    /// <inheritdoc />
    public long Mmap(SyscallContext ctx, MmapRequest request) => Device.Driver.Mmap(new VfioCallContext(ctx), Device, request);

    /// <inheritdoc />
    public long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => Device.Driver.Read(Device, destination, offset);

    /// <inheritdoc />
    public long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => Device.Driver.Write(Device, source, offset);

    /// <inheritdoc />
    public void Release() => Device.CloseFile();
}
