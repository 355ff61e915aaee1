using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>The system-call surface of one simulated process (the syscall entry points: open, close, dup,
/// ioctl, mmap, munmap, fork, exit, and user memory access), over the Host layer's model.</summary>
/// <remarks>Stateless beyond its process; every call on an exited process returns -ESRCH (Fork throws). Every call
/// emits one <c>syscall</c> trace event when it returns (as strace prints its line): the call, its arguments, the
/// path of the fd it used, its return value and, when it failed, the errno's name; the internal events it caused
/// come before it.</remarks>
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
        int fd = OpenCall(path);
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
    public int Close(int fd)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        int r = Process.IsAlive ? Process.Fds.Close(fd) : (int)Errno.ESRCH.AsReturn();
        if (Trace.Enabled)
        {
            EmitForFd("close", r, fd, path);
        }
        return r;
    }

    /// <summary>dup(2), beside the <see cref="ISyscallSurface"/> calls: the lowest free fd, sharing the open file
    /// of <paramref name="fd"/>. Returns the new fd, -EBADF, -EMFILE or -ESRCH.</summary>
    public int Dup(int fd) => Process.IsAlive ? Process.Fds.Dup(fd) : (int)Errno.ESRCH.AsReturn();

    /// <inheritdoc />
    public long Ioctl(int fd, uint request, Span<byte> arg)
    {
        string? path = Trace.Enabled ? PathOf(fd) : null;
        long r = IoctlCall(fd, request, arg);
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
        long r = IoctlCall(fd, request, value);
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
        long r = PreadCall(fd, destination, offset);
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
        long r = PwriteCall(fd, source, offset);
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
        long r = MmapCall(address, length, protection, flags, fd, offset);
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
        int r = Process.Mm is { } mm ? mm.Munmap(address, length) : (int)Errno.ESRCH.AsReturn();
        if (Trace.Enabled)
        {
            Emit("munmap", r, TraceLog.F("addr", address), TraceLog.F("length", length));
        }
        return r;
    }

    /// <inheritdoc />
    public int ReadMemory(ulong address, Span<byte> destination)
    {
        int r = Process.Mm is { } mm ? ToReturn(mm.ReadMemory(new HostVirtAddr(address), destination)) : (int)Errno.ESRCH.AsReturn();
        if (Trace.Enabled)
        {
            Emit("read_memory", r, TraceLog.F("vaddr", address), TraceLog.F("size", (ulong)destination.Length));
        }
        return r;
    }

    /// <inheritdoc />
    public int WriteMemory(ulong address, ReadOnlySpan<byte> source)
    {
        int r = Process.Mm is { } mm ? ToReturn(mm.WriteMemory(new HostVirtAddr(address), source)) : (int)Errno.ESRCH.AsReturn();
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
        Errno e = Process.TryFork(out child);
        if (Trace.Enabled)
        {
            Emit("fork", e == Errno.None ? child!.Pid : e.AsReturn());
        }
        return e;
    }

    /// <summary>execve: <see cref="Process.Exec"/> as a system call (traced).</summary>
    public Errno Exec()
    {
        Errno e = Process.Exec();
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
        bool alive = Process.IsAlive;
        Process.Exit();
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
        var fields = new KeyValuePair<string, object>[args.Length + (result < 0 ? 3 : 2)];
        fields[0] = TraceLog.F("call", call);
        args.CopyTo(fields, 1);
        fields[args.Length + 1] = TraceLog.F("result", result);
        if (result < 0)
        {
            fields[args.Length + 2] = TraceLog.F("errno", ErrnoExtensions.FromReturn(result));
        }
        Trace.Emit(TraceKind.Syscall, Pid, fields);
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
