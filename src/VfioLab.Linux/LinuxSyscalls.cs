using VfioLab.Abi;

namespace VfioLab.Linux;

/// <summary>
/// The real kernel as an <see cref="ISyscallSurface"/>: this process's system calls through libc, so the typed client
/// (<c>VfioLab.Client</c>) drives <c>/dev/vfio</c> on a real host exactly as it drives a simulated process.
/// </summary>
/// <remarks>
/// Memory reads and writes go through <c>process_vm_readv</c>/<c>process_vm_writev</c> on this process, so an
/// unmapped or unreadable address answers -EFAULT instead of crashing the runtime. <see cref="Fork"/> is not offered
/// (a .NET process cannot fork safely). <see cref="Exit"/> closes the fds this surface opened and unmaps what it
/// mapped (device fds from VFIO_GROUP_GET_DEVICE_FD included), and leaves the process running. Using VFIO on a real host needs the vfio modules, a device bound to
/// vfio-pci, access to <c>/dev/vfio/*</c> and enough RLIMIT_MEMLOCK.
/// </remarks>
public sealed unsafe class LinuxSyscalls : ISyscallSurface
{
    private readonly Lock _lock = new();
    private readonly HashSet<int> _fds = [];
    private readonly Dictionary<ulong, ulong> _mappings = [];

    /// <summary>Creates the surface.</summary>
    /// <exception cref="PlatformNotSupportedException">Not running on Linux.</exception>
    public LinuxSyscalls()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("VfioLab.Linux drives the Linux kernel's /dev/vfio and runs only on Linux");
        }
        Pid = LibC.GetPid();
    }

    /// <inheritdoc/>
    public int Pid { get; }

    /// <inheritdoc/>
    public int Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        int fd = LibC.Open(path, LibC.ORdwr | LibC.OCloexec);
        if (fd < 0)
        {
            return (int)LibC.Failed();
        }
        lock (_lock)
        {
            _fds.Add(fd);
        }
        return fd;
    }

    /// <summary>eventfd(2), non-blocking and close-on-exec, as an fd of this surface (closed by <see cref="Exit"/> like
    /// the others): the fd or -errno. Read it with <see cref="EventFd.Read"/>.</summary>
    public int CreateEventFd()
    {
        long fd = EventFd.Create();
        if (fd >= 0)
        {
            lock (_lock)
            {
                _fds.Add((int)fd);
            }
        }
        return (int)fd;
    }

    /// <inheritdoc/>
    public int Close(int fd)
    {
        lock (_lock)
        {
            _fds.Remove(fd);
        }
        return LibC.Close(fd) < 0 ? (int)LibC.Failed() : 0;
    }

    /// <inheritdoc/>
    public long Ioctl(int fd, uint request, Span<byte> arg)
    {
        int rc;
        fixed (byte* p = arg)
        {
            rc = LibC.IoctlPointer(fd, request, p);
        }
        if (rc < 0)
        {
            return LibC.Failed();
        }
        if (request == VfioIoctl.GroupGetDeviceFd)
        {
            // A device fd is a new fd of this process like one from open, and it holds its group's file: Exit must
            // close it or the group stays busy (the group's next open is EBUSY).
            lock (_lock)
            {
                _fds.Add(rc);
            }
        }
        return rc;
    }

    /// <inheritdoc/>
    public long Ioctl(int fd, uint request, ulong value)
    {
        int rc = LibC.IoctlValue(fd, request, (nuint)value);
        return rc < 0 ? LibC.Failed() : rc;
    }

    /// <inheritdoc/>
    public long Pread(int fd, Span<byte> destination, ulong offset)
    {
        if (offset > long.MaxValue)
        {
            return Errno.EINVAL.AsReturn();
        }
        fixed (byte* p = destination)
        {
            nint n = LibC.Pread(fd, p, (nuint)destination.Length, (long)offset);
            return n < 0 ? LibC.Failed() : n;
        }
    }

    /// <inheritdoc/>
    public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset)
    {
        if (offset > long.MaxValue)
        {
            return Errno.EINVAL.AsReturn();
        }
        fixed (byte* p = source)
        {
            nint n = LibC.Pwrite(fd, p, (nuint)source.Length, (long)offset);
            return n < 0 ? LibC.Failed() : n;
        }
    }

    /// <inheritdoc/>
    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset)
    {
        if (offset > long.MaxValue)
        {
            return Errno.EINVAL.AsReturn();
        }
        nint result = LibC.Mmap((nint)address, (nuint)length, (int)protection, (int)flags, fd, (long)offset);
        if (result == -1)
        {
            return LibC.Failed();
        }
        lock (_lock)
        {
            _mappings[(ulong)result] = length;
        }
        return result;
    }

    /// <inheritdoc/>
    public int Munmap(ulong address, ulong length)
    {
        if (LibC.Munmap((nint)address, (nuint)length) < 0)
        {
            return (int)LibC.Failed();
        }
        lock (_lock)
        {
            _mappings.Remove(address);
        }
        return 0;
    }

    /// <inheritdoc/>
    public int ReadMemory(ulong address, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            return Transfer(address, p, destination.Length, write: false);
        }
    }

    /// <inheritdoc/>
    public int WriteMemory(ulong address, ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
        {
            return Transfer(address, p, source.Length, write: true);
        }
    }

    /// <summary>Copies <paramref name="length"/> bytes between <paramref name="buffer"/> and this process's memory at
    /// <paramref name="address"/> with process_vm_readv/writev: 0, or -EFAULT when any byte is unreachable.</summary>
    private int Transfer(ulong address, byte* buffer, int length, bool write)
    {
        if (length == 0)
        {
            return 0;
        }
        var local = new LibC.IoVec { Base = buffer, Length = (nuint)length };
        var remote = new LibC.IoVec { Base = (void*)address, Length = (nuint)length };
        nint n = write ? LibC.ProcessVmWritev(Pid, &local, 1, &remote, 1, 0) : LibC.ProcessVmReadv(Pid, &local, 1, &remote, 1, 0);
        return n == length ? 0 : n < 0 ? (int)LibC.Failed() : (int)Errno.EFAULT.AsReturn();
    }

    /// <summary>Not offered on the real kernel: a .NET process cannot fork safely.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public ISyscallSurface Fork() =>
        throw new NotSupportedException("fork is not offered by the real-kernel surface: a .NET runtime cannot fork safely; use the simulated host to study fork");

    /// <summary>Closes every fd this surface opened and unmaps every mapping it made; the process keeps running.</summary>
    public void Exit()
    {
        int[] fds;
        KeyValuePair<ulong, ulong>[] mappings;
        lock (_lock)
        {
            fds = [.. _fds];
            mappings = [.. _mappings];
            _fds.Clear();
            _mappings.Clear();
        }
        foreach ((ulong address, ulong length) in mappings)
        {
            LibC.Munmap((nint)address, (nuint)length);
        }
        foreach (int fd in fds)
        {
            LibC.Close(fd);
        }
    }
}
