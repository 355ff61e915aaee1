using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Vfio.Pci;

/// <summary>
/// An eventfd (fs/eventfd.c, <c>struct eventfd_ctx</c>), created non-blocking: a 64-bit counter that a signal adds
/// one to and a read takes and clears. vfio-pci's interrupt triggers hold the context, not the fd, so closing the fd
/// does not stop delivery (<c>eventfd_ctx_fdget</c> takes its own reference).
/// </summary>
/// <remarks>Lives beside its only kernel user here (vfio-pci's SET_IRQS); it is a Host-layer object and belongs
/// there. Thread-safe through Interlocked on the counter; it has no ioctl, mmap or pread (ENOTTY, ENODEV,
/// ESPIPE as Linux answers on an eventfd).</remarks>
internal sealed class EventFd : IFileOperations
{
    /// <summary>The name an eventfd's file has (<c>anon_inode:[eventfd]</c>).</summary>
    public const string Path = "anon_inode:[eventfd]";

    private readonly Lock _wait = new();
    private ulong _count;
    private long _signals;
    private Action<EventFd>? _waiter;

    /// <summary>The counter now.</summary>
    public ulong Count => Interlocked.Read(ref _count);

    /// <summary>Signals since creation (never cleared by a read).</summary>
    public long Signals => Interlocked.Read(ref _signals);

    /// <summary><c>eventfd_signal</c>: adds one to the counter.</summary>
    public void Signal()
    {
        Interlocked.Increment(ref _count);
        Interlocked.Increment(ref _signals);
    }

    /// <summary>
    /// A non-blocking write(2) of <paramref name="value"/> (eventfd_write): adds it to the counter; -EINVAL for
    /// 2^64-1, -EAGAIN when the counter would reach 2^64-1 (non-blocking). A waiter registered with
    /// <see cref="SetWaiter"/> (a virqfd) then takes the counter, as virqfd_wakeup reads it in the wakeup, and runs:
    /// outside this eventfd's lock, so a waiter may take a driver's lock that is held while it registers itself.
    /// Returns 8, the bytes written.
    /// </summary>
    public long Write(ulong value)
    {
        if (value == ulong.MaxValue)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "eventfd_write", "the value 0xffffffffffffffff is reserved");
        }
        Action<EventFd>? waiter;
        using (_wait.EnterScope())
        {
            ulong count = Interlocked.Read(ref _count);
            if (ulong.MaxValue - count <= value)
            {
                return Refusals.RefuseReturn(Errno.EAGAIN, "eventfd_write", "the counter {0} plus {1} would reach 2^64-1 (non-blocking)", count, value);
            }
            Interlocked.Add(ref _count, value);
            if (value > 0)
            {
                Interlocked.Increment(ref _signals);
            }
            waiter = value > 0 ? _waiter : null;
            if (waiter is not null)
            {
                Interlocked.Exchange(ref _count, 0);
            }
        }
        waiter?.Invoke(this);
        return sizeof(ulong);
    }

    /// <summary>Registers (or, with null, removes) the one waiter a user write wakes: vfio's virqfd (vfio_virqfd_enable
    /// adds it to the eventfd's wait queue). Signals from the kernel side (<see cref="Signal"/>, a device's trigger)
    /// do not run it here: the model never makes one eventfd both a trigger and a virqfd of the same device.</summary>
    public void SetWaiter(Action<EventFd>? waiter)
    {
        using (_wait.EnterScope())
        {
            _waiter = waiter;
        }
    }

    /// <summary>A non-blocking read(2): the counter, cleared; -EAGAIN when it is zero.</summary>
    public long Take()
    {
        ulong value = Interlocked.Exchange(ref _count, 0);
        return value == 0 ? Refusals.RefuseReturn(Errno.EAGAIN, "eventfd_read", "the counter is 0 (non-blocking)") : (long)value;
    }

    /// <summary>eventfd(2) in <paramref name="process"/>: the new fd, or -EMFILE.</summary>
    public static int Create(Process process, out EventFd eventFd)
    {
        eventFd = new EventFd();
        var file = new OpenFile(Path, eventFd);
        int fd = process.Fds.Install(file);
        if (fd < 0)
        {
            file.Put();
        }
        return fd;
    }

    /// <summary><c>eventfd_ctx_fdget</c>: the eventfd behind <paramref name="fd"/> of <paramref name="process"/>;
    /// EBADF for an fd that is not open, EINVAL for a file that is not an eventfd.</summary>
    public static Errno TryGet(Process process, int fd, out EventFd? eventFd)
    {
        eventFd = null;
        if (!process.Fds.TryGet(fd, out OpenFile file))
        {
            return Refusals.Refuse(Errno.EBADF, "eventfd_ctx_fdget", "fd {0} is not open in process {1}", (ulong)(uint)fd, (ulong)process.Pid);
        }
        try
        {
            eventFd = file.Operations as EventFd;
            return eventFd is null ? Refusals.Refuse(Errno.EINVAL, "eventfd_ctx_fdget", "fd {0} is not an eventfd", (ulong)(uint)fd) : Errno.None;
        }
        finally
        {
            file.Put();
        }
    }

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg) => Refusals.RefuseReturn(Errno.ENOTTY, "vfs_ioctl", "an eventfd has no ioctls");

    /// <inheritdoc />
    public long Ioctl(SyscallContext ctx, uint request, ulong value) => Refusals.RefuseReturn(Errno.ENOTTY, "vfs_ioctl", "an eventfd has no ioctls");

    /// <inheritdoc />
    public long Mmap(SyscallContext ctx, MmapRequest request) => Refusals.RefuseReturn(Errno.ENODEV, "mmap", "an eventfd cannot be mmapped");

    /// <inheritdoc />
    /// <remarks>An eventfd is not seekable: pread answers ESPIPE.</remarks>
    public long Read(SyscallContext ctx, Span<byte> destination, ulong offset) => Refusals.RefuseReturn(Errno.ESPIPE, "vfs_read", "pread on an eventfd (not seekable)");

    /// <inheritdoc />
    public long Write(SyscallContext ctx, ReadOnlySpan<byte> source, ulong offset) => Refusals.RefuseReturn(Errno.ESPIPE, "vfs_write", "pwrite on an eventfd (not seekable)");

    /// <inheritdoc />
    public void Release()
    {
    }
}
