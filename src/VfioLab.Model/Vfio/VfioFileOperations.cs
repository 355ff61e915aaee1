using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// What the VFIO files (container, group, device) share: an ioctl reaches the handler as one
/// <see cref="IoctlArgument"/> whether the caller passed a buffer or an integer, the way the kernel's
/// <c>unlocked_ioctl</c> receives one <c>unsigned long arg</c>.
/// </summary>
internal abstract class VfioFileOperations : IFileOperations
{
    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg)
    {
        var ioctlArg = IoctlArgument.FromBuffer(arg, ctx.Process);
        return Dispatch(ctx, request, ref ioctlArg);
    }

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, ulong value)
    {
        var ioctlArg = IoctlArgument.FromValue(value, ctx.Process);
        return Dispatch(ctx, request, ref ioctlArg);
    }

    /// <inheritdoc />
    public virtual long Mmap(SyscallContext ctx, MmapRequest request) => Refusals.RefuseReturn(Errno.ENODEV, "mmap", "{4} cannot be mmapped", text: ctx.File.Path);

    /// <inheritdoc />
    public virtual long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "vfs_read", "{4} has no read method", text: ctx.File.Path);

    /// <inheritdoc />
    public virtual long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "vfs_write", "{4} has no write method", text: ctx.File.Path);

    /// <inheritdoc />
    public abstract void Release();

    /// <summary>The file's ioctl handler.</summary>
    protected abstract long Dispatch(SyscallContext ctx, uint request, ref IoctlArgument arg);
}
