using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// A simulated process (struct task_struct as a thread-group leader, with its signal->rlim and
/// credentials): pid, RLIMIT_MEMLOCK, CAP_IPC_LOCK, its address space and fd table.
/// </summary>
/// <remarks>Lock: <c>_gate</c> (task_lock) serializes the writers of <c>_mm</c> and <c>_alive</c> (exec, exit); readers
/// take a volatile read of the one field they need, as the kernel reads <c>current-&gt;mm</c> without task_lock: one
/// word read needs no lock, and every system call reads both (issue 16: a lock round trip each, twice per 4 KiB MAP).
/// Limits are plain
/// volatile-free settings changed only between steps. Never changing: <see cref="Machine"/>,
/// <see cref="Pid"/>, <see cref="Tgid"/>, <see cref="Name"/>, <see cref="Fds"/>.</remarks>
internal sealed class Process
{
    private readonly Lock _gate = new();
    private AddressSpace? _mm;
    private bool _alive = true;
    private SimulatedProcess? _syscalls;

    internal Process(Machine machine, int pid, string name, ulong memlockLimitBytes, bool capIpcLock, FdTable fds, AddressSpace? mm)
    {
        Machine = machine;
        Pid = pid;
        Tgid = pid;
        Name = name;
        MemlockLimitBytes = memlockLimitBytes;
        CapIpcLock = capIpcLock;
        Fds = fds;
        _mm = mm ?? new AddressSpace(machine, pid);
        LastMm = _mm;
    }

    /// <summary>The host.</summary>
    public Machine Machine { get; }

    /// <summary>The process id.</summary>
    public int Pid { get; }

    /// <summary>The thread-group id (equal to <see cref="Pid"/>: the model's processes are single-threaded leaders).</summary>
    public int Tgid { get; }

    /// <summary>The command name (comm).</summary>
    public string Name { get; }

    /// <summary>RLIMIT_MEMLOCK in bytes; <see cref="ulong.MaxValue"/> is RLIM_INFINITY.</summary>
    public ulong MemlockLimitBytes { get; set; }

    /// <summary>Whether the process has CAP_IPC_LOCK (exempt from RLIMIT_MEMLOCK).</summary>
    public bool CapIpcLock { get; set; }

    /// <summary>RLIMIT_MEMLOCK in pages (rlimit(RLIMIT_MEMLOCK) &gt;&gt; PAGE_SHIFT), as type1 compares it.</summary>
    public ulong MemlockLimitPages => MemlockLimitBytes >> Machine.PageShift;

    /// <summary>The open files.</summary>
    public FdTable Fds { get; }

    /// <summary>Why the process's last system call failed (<see cref="Refusals"/>), or none when it succeeded or no
    /// check explained its errno. Written by the call's own thread when it returns.</summary>
    public Refusal LastRefusal
    {
        get => _lastRefusal;
        set => _lastRefusal = value;
    }

    private Refusal _lastRefusal;

    /// <summary>Forgets <see cref="LastRefusal"/> if one is recorded (a call that succeeded; <see cref="Refusal.Forget"/>).</summary>
    internal void ForgetLastRefusal() => Refusal.Forget(ref _lastRefusal);

    /// <summary>The address space this process had last (the one exec gave it), kept after exit so its
    /// <c>locked_vm</c> stays readable (a dead mm's counter is what leaks show up in).</summary>
    public AddressSpace LastMm { get; private set; }

    /// <summary>The address space; null once the process exited.</summary>
    public AddressSpace? Mm => Volatile.Read(ref _mm);

    /// <summary>Whether the process has not exited.</summary>
    public bool IsAlive => Volatile.Read(ref _alive);

    /// <summary>The process's system-call surface.</summary>
    public SimulatedProcess Syscalls => _syscalls ??= new SimulatedProcess(this);

    /// <summary>fork: a child with a copy of the address space (see <see cref="AddressSpace"/>'s fork policy)
    /// and of the fd table, the same limits and capability. Returns ENOMEM (and no child) when pinned pages
    /// could not be copied, ESRCH for an exited process.</summary>
    public Errno TryFork(out Process? child)
    {
        child = null;
        AddressSpace? mm = Mm;
        if (mm is null || !mm.TryGetUser())
        {
            return Refusals.Refuse(Errno.ESRCH, "copy_process", "process {0} has exited", (ulong)Pid);
        }
        try
        {
            int pid = Machine.AllocatePid();
            var childMm = new AddressSpace(Machine, pid);
            mm.MmapWriteLock();
            Errno e;
            try
            {
                e = mm.DuplicateIntoLocked(childMm);
            }
            finally
            {
                mm.MmapWriteUnlock();
            }
            if (e != Errno.None)
            {
                childMm.PutUser();
                return e;
            }
            child = new Process(Machine, pid, Name, MemlockLimitBytes, CapIpcLock, Fds.Clone(), childMm);
            Machine.AddProcess(child);
            if (Machine.Trace.Enabled)
            {
                Machine.Trace.Emit(TraceKind.Fork, Pid, TraceLog.F("child", pid));
            }
            return Errno.None;
        }
        finally
        {
            mm.PutUser();
        }
    }

    /// <summary>execve of a new program: the process keeps its pid, limits, credentials and fds (close-on-exec
    /// is not modelled) but gets a fresh, empty address space with <c>locked_vm</c> 0 (exec_mmap), and drops
    /// its user of the old one, which is torn down unless someone else holds it (pages pinned by a driver stay
    /// pinned). ESRCH for an exited process.</summary>
    public Errno Exec()
    {
        var fresh = new AddressSpace(Machine, Pid);
        AddressSpace? old;
        lock (_gate)
        {
            if (!_alive)
            {
                return Refusals.Refuse(Errno.ESRCH, "execve", "process {0} has exited", (ulong)Pid);
            }
            old = _mm;
            _mm = fresh;
            LastMm = fresh;
        }
        old?.PutUser();
        if (Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Exec, Pid);
        }
        return Errno.None;
    }

    /// <summary>exit: drops the address space's user (the last user tears it down; the
    /// <see cref="AddressSpace"/> object stays readable for whoever kept it), then closes every fd. Idempotent.</summary>
    public void Exit()
    {
        AddressSpace? mm;
        lock (_gate)
        {
            if (!_alive)
            {
                return;
            }
            _alive = false;
            mm = _mm;
            _mm = null;
        }
        // do_exit order: exit_mm, then exit_files.
        mm?.PutUser();
        Fds.CloseAll();
        Machine.RemoveProcess(this);
        if (Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Exit, Pid);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}[{Pid}]";
}
