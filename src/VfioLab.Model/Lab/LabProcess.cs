using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Lab;

/// <summary>
/// One simulated process of a <see cref="LabHost"/>: its system-call surface (<see cref="Syscalls"/>, what
/// <c>VfioLab.Client</c> runs on), its RLIMIT_MEMLOCK and CAP_IPC_LOCK, its <c>locked_vm</c>, and what the host can
/// do to it (fork, exec, exit, another thread holding its mmap lock).
/// </summary>
public sealed class LabProcess
{
    private readonly LabHost _host;

    internal LabProcess(LabHost host, Process process, string name)
    {
        _host = host;
        Process = process;
        Name = name;
        Syscalls = new LabSyscalls(host, this);
    }

    /// <summary>TASK_SIZE: the end of a process's user address space (47 bits); mmap and GUP refuse addresses past it.</summary>
    public const ulong TaskSize = AddressSpace.TaskSize;

    /// <summary>The name the process was spawned or forked with.</summary>
    public string Name { get; }

    /// <summary>The process id.</summary>
    public int Pid => Process.Pid;

    /// <summary>Whether the process has not exited.</summary>
    public bool IsAlive => Process.IsAlive;

    /// <summary>The process's system calls: open, ioctl, mmap, pread/pwrite, its own memory, close, fork, exit. Failures
    /// come back as -errno, exactly as Linux answers them. With <see cref="InvariantChecking.AfterEveryCall"/> a call that
    /// breaks an invariant throws <see cref="InvariantViolationException"/> after it completed.</summary>
    public ISyscallSurface Syscalls { get; }

    /// <summary>Why the process's last system call failed: the kernel check that refused it (its function as Linux names
    /// it), the values involved and, where it matters, the profile switch or commit; null when the call succeeded, before
    /// any call, or when no check of the model explains its errno.</summary>
    public LabRefusal? LastRefusal => LabRefusal.From(Process.LastRefusal);

    /// <summary>RLIMIT_MEMLOCK in bytes (<see cref="LabHostBuilder.Unlimited"/> for none); setting it is setrlimit:
    /// charges already taken stay, the next charge is judged against the new limit.</summary>
    public ulong MemlockLimitBytes
    {
        get => Process.MemlockLimitBytes;
        set
        {
            LabHost.Wide(_host);
            Process.MemlockLimitBytes = value;
        }
    }

    /// <summary>Whether the process has CAP_IPC_LOCK (pins are then charged but never refused).</summary>
    public bool CapIpcLock => Process.CapIpcLock;

    /// <summary>The pages charged to the process's <c>mm->locked_vm</c> (of its last mm, after it exited).</summary>
    public ulong LockedVmPages => Process.LastMm.LockedVm;

    /// <summary><see cref="LockedVmPages"/> in bytes.</summary>
    public ulong LockedVmBytes => Process.LastMm.LockedVm << _host.Simulated.Machine.PageShift;

    /// <summary>Forks the process (children share its open files; private memory is copied on write, pinned pages at
    /// once). The child is named <paramref name="childName"/>, or <c>NAME-child-PID</c>.</summary>
    /// <returns><see cref="Errno.None"/>, ESRCH for an exited process, or ENOMEM when its pinned pages cannot be copied.</returns>
    public Errno TryFork(out LabProcess? child, string? childName = null)
    {
        LabHost.Wide(_host);
        Errno e = Process.Syscalls.TryFork(out Process? forked);
        child = e == Errno.None ? _host.Adopt(forked!, childName ?? $"{Name}-child-{forked!.Pid}") : null;
        return e;
    }

    /// <summary>execve: the process gets a fresh mm; its open VFIO files stay (no close-on-exec).</summary>
    /// <returns><see cref="Errno.None"/>, or ESRCH for an exited process.</returns>
    public Errno Exec()
    {
        LabHost.Wide(_host);
        return Process.Syscalls.Exec();
    }

    /// <summary>Exits the process: its files are closed and its mm torn down. Nothing changes if it already exited
    /// (the trace shows that exit answering ESRCH).</summary>
    public void Exit()
    {
        LabHost.Wide(_host);
        Process.Syscalls.Exit();
    }

    /// <summary>Another thread of the process takes its mmap lock (for read) and keeps it until
    /// <see cref="ReleaseMmapLock"/>: what type1 before 0cfef2b7410b raced with (quirk <c>async-lock-accounting</c>).</summary>
    /// <returns>False when the process has exited.</returns>
    public bool HoldMmapLock()
    {
        LabHost.Wide(_host);
        if (Process.Mm is not { } mm)
        {
            return false;
        }
        mm.HoldMmapLockForOtherThread();
        return true;
    }

    /// <summary>The other thread of <see cref="HoldMmapLock"/> lets the mmap lock go.</summary>
    /// <returns>False when no other thread held it, or the process has exited.</returns>
    public bool ReleaseMmapLock()
    {
        LabHost.Wide(_host);
        return Process.Mm is { } mm && mm.ReleaseMmapLockOfOtherThread();
    }

    /// <summary>Maps another driver's MMIO into the process (a VM_PFNMAP VMA as remap_pfn_range makes it, not a VFIO BAR):
    /// fresh frames beyond RAM, or, with <paramref name="refcounted"/>, ordinary RAM pages mapped as PFNMAP.</summary>
    /// <returns>The address, or -errno as mmap returns it.</returns>
    public long MmapForeignMmio(ulong address, ulong size, MemoryProtection protection, bool refcounted = false)
    {
        LabHost.Wide(_host);
        return Process.Syscalls.Explained(() =>
        {
            if (Process.Mm is not { } mm)
            {
                return Diagnostics.Refusals.RefuseReturn(Errno.ESRCH, "mmap", "process {0} has exited", (ulong)Pid);
            }
            Machine machine = _host.Simulated.Machine;
            ulong pages = (size >> machine.PageShift) + ((size & (machine.PageSize - 1)) != 0 ? 1UL : 0);
            Addressing.Pfn first = refcounted ? default : machine.AllocateMmioPfns(Math.Max(pages, 1));
            return mm.MmapOtherMmio(address, size, protection, address != 0, refcounted, first);
        });
    }

    /// <summary>The page frame number the process's page table maps at <paramref name="vaddr"/> now, without faulting
    /// anything in: the frame a pin taken there holds.</summary>
    /// <returns>The frame, or null when no page is present there or the process has exited.</returns>
    public ulong? FrameAt(ulong vaddr)
    {
        if (Process.Mm is not { } mm)
        {
            return null;
        }
        mm.MmapReadLock();
        try
        {
            return mm.TryTranslateLocked(new Addressing.HostVirtAddr(vaddr), out Pte pte) ? pte.Pfn.Value : null;
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    /// <summary>The container open as <paramref name="fd"/> in this process, or null when fd is not a container.</summary>
    public LabContainer? ContainerOf(int fd) => FileOf(fd) is VfioContainerFile c ? new LabContainer(c.Container) : null;

    /// <summary>The process's open VFIO group files: fd to IOMMU group number, in fd order.</summary>
    public IReadOnlyList<KeyValuePair<int, int>> GroupFds()
    {
        var found = new List<KeyValuePair<int, int>>();
        if (!Process.IsAlive)
        {
            return found;
        }
        foreach (int fd in Process.Fds.Snapshot())
        {
            if (FileOf(fd) is VfioGroupFile g)
            {
                found.Add(new(fd, g.Group.Number));
            }
        }
        return found;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}[{Pid}]";

    internal Process Process { get; }

    private IFileOperations? FileOf(int fd)
    {
        if (!Process.IsAlive || !Process.Fds.TryGet(fd, out OpenFile file))
        {
            return null;
        }
        IFileOperations ops = file.Operations;
        file.Put();
        return ops;
    }

    /// <summary>eventfd(2), non-blocking, in this process: the new fd (to pass to VFIO_DEVICE_SET_IRQS), or -EMFILE.</summary>
    public int CreateEventFd() => (int)Process.Syscalls.Explained(() => Vfio.Pci.EventFd.Create(Process, out _));

    /// <summary>A non-blocking read(2) of eventfd <paramref name="fd"/>: the counter (how many times it was signalled
    /// since the last read), which the read clears; -EAGAIN when zero, -EBADF for an fd that is not open, -EINVAL for
    /// a file that is not an eventfd.</summary>
    public long ReadEventFd(int fd) => Process.Syscalls.Explained(() =>
    {
        Abi.Errno e = Vfio.Pci.EventFd.TryGet(Process, fd, out Vfio.Pci.EventFd? efd);
        return e != Abi.Errno.None ? e.AsReturn() : efd!.Take();
    });

    /// <summary>A non-blocking write(2) of <paramref name="value"/> to eventfd <paramref name="fd"/>: 8 (the bytes
    /// written), -EINVAL for 2^64-1 or a file that is not an eventfd, -EAGAIN when the counter would overflow, -EBADF
    /// for an fd that is not open. An INTx unmask eventfd (SET_IRQS ACTION_UNMASK with DATA_EVENTFD) takes the count
    /// and unmasks, as the kernel's virqfd does.</summary>
    public long WriteEventFd(int fd, ulong value = 1) => Process.Syscalls.Explained(() =>
    {
        Abi.Errno e = Vfio.Pci.EventFd.TryGet(Process, fd, out Vfio.Pci.EventFd? efd);
        return e != Abi.Errno.None ? e.AsReturn() : efd!.Write(value);
    });
}
