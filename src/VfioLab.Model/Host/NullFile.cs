using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// <c>/dev/null</c> (null_fops in <c>drivers/char/mem.c</c>): the file every simulated process has on fds 0, 1
/// and 2, and what <see cref="Path"/> opens. Reads see end of file, writes are swallowed whole, and it has no
/// ioctl or mmap method, so an ioctl answers ENOTTY (vfs_ioctl without unlocked_ioctl) and mmap ENODEV, as on
/// Linux: a VFIO ioctl sent to stdin gets ENOTTY, not EBADF.
/// </summary>
/// <remarks>Stateless, so one instance serves every open file of it; Release has nothing to free.</remarks>
internal sealed class NullFile : IFileOperations
{
    /// <summary>The device node's path.</summary>
    public const string Path = "/dev/null";

    private NullFile()
    {
    }

    /// <summary>The one instance.</summary>
    public static NullFile Instance { get; } = new();

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg) => Refusals.RefuseReturn(Errno.ENOTTY, "vfs_ioctl", "{4} has no ioctls", text: ctx.File.Path);

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, ulong value) => Refusals.RefuseReturn(Errno.ENOTTY, "vfs_ioctl", "{4} has no ioctls", text: ctx.File.Path);

    /// <inheritdoc />
    public long Mmap(SyscallContext ctx, MmapRequest request) => Refusals.RefuseReturn(Errno.ENODEV, "mmap", "{4} cannot be mmapped", text: ctx.File.Path);

    /// <inheritdoc />
    /// <remarks>read_null: always end of file.</remarks>
    public long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => 0;

    /// <inheritdoc />
    /// <remarks>write_null: every byte is accepted and dropped.</remarks>
    public long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => source.Length;

    /// <inheritdoc />
    public void Release()
    {
    }
}
