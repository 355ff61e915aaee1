using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>The system-call surface of one simulated process (the syscall entry points: open, close, dup,
/// ioctl, mmap, munmap, fork, exit, and user memory access), over the Host layer's model.</summary>
/// <remarks>Stateless beyond its process; every call on an exited process returns -ESRCH (Fork throws). Every call
/// emits one <c>syscall</c> trace event when it returns (as strace prints its line): the call, its arguments, the
/// path of the fd it used, its return value and, when it failed, the errno's name and why (<c>refused_by</c>, <c>reason</c>,
/// <c>source</c>: the check that refused, <see cref="Refusals"/>); the internal events it caused come before it. Each call
/// starts the thread's refusal slot afresh and leaves what it found in <see cref="Process.LastRefusal"/>.</remarks>
internal sealed class SimulatedProcess(Process process) : ISyscallSurface
{
    /// <summary>The process behind the surface.</summary>
    public Process Process { get; } = process;

    /// <inheritdoc />
    public int Pid => Process.Pid;

    private TraceLog Trace => Process.Machine.Trace;

    /// <inheritdoc />
    public int Open(string path)
    {
        Refusals.Begin();
        int fd = (int)Finish(OpenCall(path));
        if (Trace.Enabled)
        {
            Emit("open", fd, TraceLog.F("path", path));
        }
        return fd;
    }

    private int OpenCall(string path)
    {
        if (!Process.IsAlive)
        {
            return (int)Exited("open");
        }
        if (!Process.Fds.HasFreeFd)
        {
            return (int)Refusals.RefuseReturn(Errno.EMFILE, "get_unused_fd_flags", "every fd of process {0} is in use (RLIMIT_NOFILE {1})", (ulong)Pid,
                FdTable.MaxFds);
        }
        DeviceOpenResult result = Process.Machine.Devices.Open(Process, path);
        if (result.Operations is null)
        {
            return result.Error == Errno.None
                ? (int)Refusals.RefuseReturn(Errno.ENODEV, "chrdev_open", "no device file at {4}", text: path)
                : (int)result.Error.AsReturn();
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
    public int Close(int fd)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        Refusals.Begin();
        int r = (int)Finish(Process.IsAlive ? Process.Fds.Close(fd) : Exited("close"));
        if (Trace.Enabled)
        {
            EmitForFd("close", r, fd, path);
        }
        return r;
    }

    /// <summary>dup(2), beside the <see cref="ISyscallSurface"/> calls: the lowest free fd, sharing the open file
    /// of <paramref name="fd"/>. Returns the new fd, -EBADF, -EMFILE or -ESRCH.</summary>
    public int Dup(int fd)
    {
        Refusals.Begin();
        return (int)Finish(Process.IsAlive ? Process.Fds.Dup(fd) : Exited("dup"));
    }

    /// <inheritdoc />
    public long Ioctl(int fd, uint request, Span<byte> arg)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        Refusals.Begin();
        long r = Finish(IoctlCall(fd, request, arg));
        if (Trace.Enabled)
        {
            EmitForFd("ioctl", r, fd, path, TraceLog.F("request", RequestName(request, path)), TraceLog.F("arg_size", (ulong)arg.Length));
        }
        return r;
    }

    /// <inheritdoc />
    public long Ioctl(int fd, uint request, ulong value)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        Refusals.Begin();
        long r = Finish(IoctlCall(fd, request, value));
        if (Trace.Enabled)
        {
            EmitForFd("ioctl", r, fd, path, TraceLog.F("request", RequestName(request, path)), TraceLog.F("arg", value));
        }
        return r;
    }

    /// <inheritdoc />
    public long Pread(int fd, Span<byte> destination, ulong offset)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        Refusals.Begin();
        long r = Finish(PreadCall(fd, destination, offset));
        if (Trace.Enabled)
        {
            EmitForFd("pread", r, fd, path, TraceLog.F("size", (ulong)destination.Length), TraceLog.F("offset", offset));
        }
        return r;
    }

    /// <inheritdoc />
    public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        Refusals.Begin();
        long r = Finish(PwriteCall(fd, source, offset));
        if (Trace.Enabled)
        {
            EmitForFd("pwrite", r, fd, path, TraceLog.F("size", (ulong)source.Length), TraceLog.F("offset", offset));
        }
        return r;
    }

    /// <inheritdoc />
    /// <remarks>An offset that is not page-aligned is -EINVAL; a non-anonymous mapping of a bad fd is
    /// -EBADF; a file mapping is placed by the core, then handed to the file's mmap with the mmap lock held
    /// for write (MAP_HUGETLB and MAP_POPULATE do not apply to device files).</remarks>
    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset)
    {
        bool anonymous = (flags & MmapFlags.Anonymous) != 0;
        string? path = Trace.Enabled && !anonymous ? PathOf(fd) : null;
        Refusals.Begin();
        long r = Finish(MmapCall(address, length, protection, flags, fd, offset));
        if (Trace.Enabled)
        {
            var args = new List<KeyValuePair<string, object>>(8)
            {
                TraceLog.F("addr", address), TraceLog.F("length", length), TraceLog.F("prot", (ulong)protection), TraceLog.F("flags", (ulong)flags),
                TraceLog.F("fd", fd),
            };
            if (path is not null)
            {
                args.Add(TraceLog.F("path", path));
            }
            args.Add(TraceLog.F("offset", offset));
            if (r >= 0)
            {
                args.Add(TraceLog.F("vaddr", (ulong)r));
            }
            Emit("mmap", r, [.. args]);
        }
        return r;
    }

    /// <inheritdoc />
    public int Munmap(ulong address, ulong length)
    {
        Refusals.Begin();
        int r = (int)Finish(Process.Mm is { } mm ? mm.Munmap(address, length) : Exited("munmap"));
        if (Trace.Enabled)
        {
            Emit("munmap", r, TraceLog.F("addr", address), TraceLog.F("length", length));
        }
        return r;
    }

    /// <inheritdoc />
    public int ReadMemory(ulong address, Span<byte> destination)
    {
        Refusals.Begin();
        int r = (int)Finish(Process.Mm is { } mm ? ToReturn(mm.ReadMemory(new HostVirtAddr(address), destination), address, (ulong)destination.Length) : Exited("read"));
        if (Trace.Enabled)
        {
            Emit("read_memory", r, TraceLog.F("vaddr", address), TraceLog.F("size", (ulong)destination.Length));
        }
        return r;
    }

    /// <inheritdoc />
    public int WriteMemory(ulong address, ReadOnlySpan<byte> source)
    {
        Refusals.Begin();
        int r = (int)Finish(Process.Mm is { } mm ? ToReturn(mm.WriteMemory(new HostVirtAddr(address), source), address, (ulong)source.Length) : Exited("write"));
        if (Trace.Enabled)
        {
            Emit("write_memory", r, TraceLog.F("vaddr", address), TraceLog.F("size", (ulong)source.Length));
        }
        return r;
    }

    /// <inheritdoc />
    /// <remarks>Throws <see cref="InvalidOperationException"/> when the fork fails (ENOMEM copying pinned
    /// pages, or an exited process); <see cref="TryFork"/> returns the errno instead.</remarks>
    public ISyscallSurface Fork()
    {
        Errno e = TryFork(out Process? child);
        if (e != Errno.None)
        {
            HostThrowHelper.ThrowInvalidOperation($"fork of {Process}: {e}");
        }
        return child!.Syscalls;
    }

    /// <summary>fork: <see cref="Process.TryFork"/> as a system call (traced with the child's pid, or the errno).</summary>
    public Errno TryFork(out Process? child)
    {
        Refusals.Begin();
        Errno e = Process.TryFork(out child);
        Finish(e.AsReturn());
        if (Trace.Enabled)
        {
            Emit("fork", e == Errno.None ? child!.Pid : e.AsReturn());
        }
        return e;
    }

    /// <summary>execve: <see cref="Process.Exec"/> as a system call (traced).</summary>
    public Errno Exec()
    {
        Refusals.Begin();
        Errno e = Process.Exec();
        Finish(e.AsReturn());
        if (Trace.Enabled)
        {
            Emit("exec", e.AsReturn());
        }
        return e;
    }

    /// <inheritdoc />
    /// <remarks>Traced with ESRCH when the process had already exited.</remarks>
    public void Exit()
    {
        Refusals.Begin();
        bool alive = Process.IsAlive;
        Process.Exit();
        Finish(alive ? 0 : Exited("exit"));
        if (Trace.Enabled)
        {
            Emit("exit", alive ? 0 : Errno.ESRCH.AsReturn());
        }
    }

    private long IoctlCall(int fd, uint request, Span<byte> arg)
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

    private long IoctlCall(int fd, uint request, ulong value)
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

    private long PreadCall(int fd, Span<byte> destination, ulong offset)
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

    private long PwriteCall(int fd, ReadOnlySpan<byte> source, ulong offset)
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

    private long MmapCall(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset)
    {
        AddressSpace? mm = Process.Mm;
        if (mm is null)
        {
            return Exited("mmap");
        }
        if ((offset & (Process.Machine.PageSize - 1)) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "ksys_mmap_pgoff", "offset 0x{0:x} is not a multiple of PAGE_SIZE 0x{1:x}", offset, Process.Machine.PageSize);
        }
        if ((flags & MmapFlags.Anonymous) != 0)
        {
            return mm.Mmap(address, length, protection, flags);
        }
        if (!Process.Fds.TryGet(fd, out OpenFile file))
        {
            return BadFd(fd);
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

    /// <summary>The one <c>syscall</c> event of a call: <c>call</c>, the arguments, <c>result</c> (the raw return value)
    /// and <c>errno</c> when it is negative.</summary>
    private void Emit(string call, long result, params KeyValuePair<string, object>[] args)
    {
        Refusal refusal = result < 0 ? Process.LastRefusal : default;
        var fields = new List<KeyValuePair<string, object>>(args.Length + 6) { TraceLog.F("call", call) };
        fields.AddRange(args);
        fields.Add(TraceLog.F("result", result));
        if (result < 0)
        {
            fields.Add(TraceLog.F("errno", ErrnoExtensions.FromReturn(result)));
            TraceLog.AddRefusal(fields, refusal);
        }
        Trace.Emit(TraceKind.Syscall, Pid, [.. fields]);
    }

    /// <summary><see cref="Emit"/> for a call on an fd: <c>fd</c> and, when it was open, its <c>path</c> come first.</summary>
    private void EmitForFd(string call, long result, int fd, string? path, params KeyValuePair<string, object>[] args)
    {
        var all = new List<KeyValuePair<string, object>>(args.Length + 2) { TraceLog.F("fd", fd) };
        if (path is not null)
        {
            all.Add(TraceLog.F("path", path));
        }
        all.AddRange(args);
        Emit(call, result, [.. all]);
    }

    /// <summary>The path an fd was opened by, or null when it is not open (for the trace only).</summary>
    private string? PathOf(int fd)
    {
        if (!Process.IsAlive || !Process.Fds.TryGet(fd, out OpenFile file))
        {
            return null;
        }
        string path = file.Path;
        file.Put();
        return path;
    }

    /// <summary>A request as the trace writes it: its <c>linux/vfio.h</c> name as the file's kind understands it (a
    /// container's own ioctls, else its IOMMU driver's: type1 and sPAPR share some codes, joined by <c>/</c>), or the
    /// number when no name fits.</summary>
    private static object RequestName(uint request, string? path)
    {
        VfioIoctlTarget[] targets = path switch
        {
            "/dev/vfio/vfio" => [VfioIoctlTarget.Container, VfioIoctlTarget.Type1, VfioIoctlTarget.Spapr],
            not null when path.StartsWith("/dev/vfio/", StringComparison.Ordinal) => [VfioIoctlTarget.Group],
            not null when path.StartsWith("[vfio-device:", StringComparison.Ordinal) => [VfioIoctlTarget.Device],
            _ => [],
        };
        var names = new List<string>(2);
        foreach (VfioIoctlTarget target in targets)
        {
            if (VfioIoctl.TryGetName(request, target, out string name) && !names.Contains(name))
            {
                names.Add(name);
                if (target == VfioIoctlTarget.Container)
                {
                    break;
                }
            }
        }
        if (names.Count == 0 && targets.Length == 0)
        {
            names.AddRange(VfioIoctl.GetNames(request));
        }
        return names.Count == 0 ? request : string.Join('/', names);
    }

    private static int ToReturn(AccessResult r, ulong address, ulong size) => r switch
    {
        AccessResult.Ok => 0,
        AccessResult.SigBus => (int)Refusals.RefuseReturn(Errno.EIO, "handle_mm_fault",
            "[0x{0:x}, +0x{1:x}) reaches a mapping whose fault answers SIGBUS (a BAR whose memory decode is off, or a zapped mmap)", address, size),
        AccessResult.NoMemory => (int)Refusals.RefuseReturn(Errno.ENOMEM, "handle_mm_fault", "no frame left to back [0x{0:x}, +0x{1:x})", address, size),
        _ => (int)Refusals.RefuseReturn(Errno.EFAULT, "copy_from_user", "[0x{0:x}, +0x{1:x}) is not mapped with the access asked for", address, size),
    };

    /// <summary>Every call of an exited process: ESRCH.</summary>
    private long Exited(string call) => Refusals.RefuseReturn(Errno.ESRCH, call, "process {0} has exited", (ulong)Pid);

    private long BadFd(int fd) => Refusals.RefuseReturn(Errno.EBADF, "fdget", "fd {0} is not open in process {1}", (ulong)(uint)fd, (ulong)Pid);

    /// <summary>A call made outside the syscall surface (an eventfd read, a foreign MMIO mapping) answered like one: its
    /// refusal, when it fails, becomes the process's and the host's last.</summary>
    internal long Explained(Func<long> call)
    {
        Refusals.Begin();
        return Finish(call());
    }

    /// <summary>A call returns: its refusal, when it failed, becomes the process's and the host's last.</summary>
    /// <remarks>A success stores "none" only over a refusal: the slots are 80-byte structs holding references, and
    /// storing one into the long-lived process and machine goes through the GC's write barrier (issue 16: 6 % of the
    /// 4 KiB pair's samples when every call stored them).</remarks>
    private long Finish(long result)
    {
        if (result >= 0)
        {
            Process.ForgetLastRefusal();
            Process.Machine.ForgetLastRefusal();
            return result;
        }
        Refusal refusal = Refusals.Take(ErrnoExtensions.FromReturn(result));
        Process.LastRefusal = refusal;
        Process.Machine.LastRefusal = refusal;
        return result;
    }

    // The common entry of fd-based calls: the process must be alive (ESRCH) and the fd open (EBADF);
    // on success the caller holds a file reference it must put.
    private bool TryGetFile(int fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out OpenFile? file, out long error)
    {
        file = null;
        if (!Process.IsAlive)
        {
            error = Exited("fdget");
            return false;
        }
        if (!Process.Fds.TryGet(fd, out OpenFile found))
        {
            error = BadFd(fd);
            return false;
        }
        file = found;
        error = 0;
        return true;
    }
}
