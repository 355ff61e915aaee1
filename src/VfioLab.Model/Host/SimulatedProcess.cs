using VfioLab.Abi;
using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>The system-call surface of one simulated process (the syscall entry points: open, close, dup,
/// ioctl, mmap, munmap, fork, exit, and user memory access), over the Host layer's model.</summary>
/// <remarks>Stateless beyond its process; every call on an exited process returns -ESRCH (Fork throws).</remarks>
internal sealed class SimulatedProcess(Process process) : ISyscallSurface
{
    /// <summary>The process behind the surface.</summary>
    public Process Process { get; } = process;

    /// <inheritdoc />
    public int Pid => Process.Pid;

    /// <inheritdoc />
    public int Open(string path)
    {
        if (!Process.IsAlive)
        {
            return (int)Errno.ESRCH.AsReturn();
        }
        if (!Process.Fds.HasFreeFd)
        {
            return (int)Errno.EMFILE.AsReturn();
        }
        DeviceOpenResult result = Process.Machine.Devices.Open(Process, path);
        if (result.Operations is null)
        {
            return (int)(result.Error == Errno.None ? Errno.ENODEV : result.Error).AsReturn();
        }
        var file = new OpenFile(path, result.Operations);
        int fd = Process.Fds.Install(file);
        if (fd < 0)
        {
            file.Put();
        }
        return fd;
    }

    /// <inheritdoc />
    public int Close(int fd) => Process.IsAlive ? Process.Fds.Close(fd) : (int)Errno.ESRCH.AsReturn();

    /// <summary>dup(2), beside the <see cref="ISyscallSurface"/> calls: the lowest free fd, sharing the open file
    /// of <paramref name="fd"/>. Returns the new fd, -EBADF, -EMFILE or -ESRCH.</summary>
    public int Dup(int fd) => Process.IsAlive ? Process.Fds.Dup(fd) : (int)Errno.ESRCH.AsReturn();

    /// <inheritdoc />
    public long Ioctl(int fd, uint request, Span<byte> arg)
    {
        if (!TryGetFile(fd, out OpenFile? file, out long error))
        {
            return error;
        }
        try
        {
            return file.Operations.Ioctl(new SyscallContext(Process.Machine, Process, file), request, arg);
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    public long Ioctl(int fd, uint request, ulong value)
    {
        if (!TryGetFile(fd, out OpenFile? file, out long error))
        {
            return error;
        }
        try
        {
            return file.Operations.Ioctl(new SyscallContext(Process.Machine, Process, file), request, value);
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    public long Pread(int fd, Span<byte> destination, ulong offset)
    {
        if (!TryGetFile(fd, out OpenFile? file, out long error))
        {
            return error;
        }
        try
        {
            return file.Operations.Read(new SyscallContext(Process.Machine, Process, file), destination, offset);
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset)
    {
        if (!TryGetFile(fd, out OpenFile? file, out long error))
        {
            return error;
        }
        try
        {
            return file.Operations.Write(new SyscallContext(Process.Machine, Process, file), source, offset);
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    /// <remarks>An offset that is not page-aligned is -EINVAL; a non-anonymous mapping of a bad fd is
    /// -EBADF; a file mapping is placed by the core, then handed to the file's mmap with the mmap lock held
    /// for write (MAP_HUGETLB and MAP_POPULATE do not apply to device files).</remarks>
    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset)
    {
        AddressSpace? mm = Process.Mm;
        if (mm is null)
        {
            return Errno.ESRCH.AsReturn();
        }
        if ((offset & (Process.Machine.PageSize - 1)) != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        if ((flags & MmapFlags.Anonymous) != 0)
        {
            return mm.Mmap(address, length, protection, flags);
        }
        if (!Process.Fds.TryGet(fd, out OpenFile file))
        {
            return Errno.EBADF.AsReturn();
        }
        try
        {
            return MmapFile(mm, file, address, length, protection, flags & ~(MmapFlags.HugeTlb | MmapFlags.Populate), offset);
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    public int Munmap(ulong address, ulong length) =>
        Process.Mm is { } mm ? mm.Munmap(address, length) : (int)Errno.ESRCH.AsReturn();

    /// <inheritdoc />
    public int ReadMemory(ulong address, Span<byte> destination) =>
        Process.Mm is { } mm ? ToReturn(mm.ReadMemory(new HostVirtAddr(address), destination)) : (int)Errno.ESRCH.AsReturn();

    /// <inheritdoc />
    public int WriteMemory(ulong address, ReadOnlySpan<byte> source) =>
        Process.Mm is { } mm ? ToReturn(mm.WriteMemory(new HostVirtAddr(address), source)) : (int)Errno.ESRCH.AsReturn();

    /// <inheritdoc />
    /// <remarks>Throws <see cref="InvalidOperationException"/> when the fork fails (ENOMEM copying pinned
    /// pages, or an exited process); <see cref="Process.TryFork"/> returns the errno instead.</remarks>
    public ISyscallSurface Fork()
    {
        Errno e = Process.TryFork(out Process? child);
        if (e != Errno.None)
        {
            HostThrowHelper.ThrowInvalidOperation($"fork of {Process}: {e}");
        }
        return child!.Syscalls;
    }

    /// <inheritdoc />
    public void Exit() => Process.Exit();

    private long MmapFile(AddressSpace mm, OpenFile file, ulong address, ulong length, MemoryProtection protection, MmapFlags flags, ulong offset)
    {
        mm.MmapWriteLock();
        try
        {
            long start = mm.PrepareMmapLocked(address, length, flags, 1, out ulong pages);
            if (start < 0)
            {
                return start;
            }
            var request = new MmapRequest(mm, file, new HostVirtAddr((ulong)start), pages, protection, flags, offset >> mm.PageShift);
            long r = file.Operations.Mmap(new SyscallContext(Process.Machine, Process, file), request);
            if (r < 0)
            {
                if (request.Vma is not null)
                {
                    HostThrowHelper.ThrowInvalidOperation($"{file.Path}: mmap failed ({r}) after creating its VMA");
                }
                return r;
            }
            if (request.Vma is null)
            {
                HostThrowHelper.ThrowInvalidOperation($"{file.Path}: mmap succeeded without creating a VMA");
            }
            mm.TraceMmap(request.Vma);
            return start;
        }
        finally
        {
            mm.MmapWriteUnlock();
        }
    }

    private static int ToReturn(AccessResult r) => r switch
    {
        AccessResult.Ok => 0,
        AccessResult.SigBus => (int)Errno.EIO.AsReturn(),
        AccessResult.NoMemory => (int)Errno.ENOMEM.AsReturn(),
        _ => (int)Errno.EFAULT.AsReturn(),
    };

    // The common entry of fd-based calls: the process must be alive (ESRCH) and the fd open (EBADF);
    // on success the caller holds a file reference it must put.
    private bool TryGetFile(int fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out OpenFile? file, out long error)
    {
        file = null;
        if (!Process.IsAlive)
        {
            error = Errno.ESRCH.AsReturn();
            return false;
        }
        if (!Process.Fds.TryGet(fd, out OpenFile found))
        {
            error = Errno.EBADF.AsReturn();
            return false;
        }
        file = found;
        error = 0;
        return true;
    }
}
