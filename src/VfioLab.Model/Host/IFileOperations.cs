using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>A driver's file callbacks (struct file_operations): what an open file of a device does.</summary>
internal interface IFileOperations
{
    /// <summary>unlocked_ioctl with a pointer argument: <paramref name="arg"/> is the user buffer.
    /// Returns &gt;= 0 or -errno.</summary>
    long Ioctl(SyscallContext ctx, uint request, Span<byte> arg);

    /// <summary>unlocked_ioctl with an integer argument. Returns &gt;= 0 or -errno.</summary>
    long Ioctl(SyscallContext ctx, uint request, ulong value);

    /// <summary>f_op->mmap: called with the mmap lock held for write once the address is chosen; on
    /// success it must create the VMA with <see cref="MmapRequest.CreateVma"/> and return 0; else -errno.</summary>
    long Mmap(SyscallContext ctx, MmapRequest request);

    /// <summary>f_op->release: the last reference to the open file is gone (no fd, no VMA). Never fails.</summary>
    void Release();

    /// <summary>f_op->read at <paramref name="offset"/> (pread). Returns bytes read or -errno; files
    /// without a read method answer EINVAL, as Linux does for a file opened without FMODE_PREAD.</summary>
    long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "vfs_read", "{4} has no read method", text: ctx.File.Path);

    /// <summary>f_op->write at <paramref name="offset"/> (pwrite). Returns bytes written or -errno.</summary>
    long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "vfs_write", "{4} has no write method", text: ctx.File.Path);
}
