using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// The simulated host (the machine plus the core kernel around mm): PAGE_SIZE, physical memory,
/// the process table and pid allocation, device nodes, the MMIO bus, the trace log and fault injector.
/// </summary>
/// <remarks>Lock: <c>_gate</c> protects <c>_processes</c>, <c>_nextPid</c> and <c>_nextMmioPfn</c>
/// (tasklist_lock); it is a leaf. Never changing: <see cref="PageShift"/>, <see cref="Memory"/>,
/// <see cref="Trace"/>, <see cref="Faults"/>, <see cref="Devices"/>, <see cref="GupBehavior"/>.</remarks>
internal sealed class Machine
{
    private readonly Lock _gate = new();
    private readonly List<Process> _processes = [];
    private int _nextPid = 1;
    private ulong _nextMmioPfn;

    /// <summary>Creates a host with <paramref name="ramBytes"/> of RAM and the given PAGE_SIZE
    /// (<paramref name="pageShift"/> 12, 14 or 16) and GUP's switches (<paramref name="gup"/>, today's by default).</summary>
    public Machine(ulong ramBytes, int pageShift = 12, FrameLayout? layout = null, TraceLog? trace = null, FaultInjector? faults = null,
        GupBehavior? gup = null)
    {
        GupBehavior = gup ?? GupBehavior.Default;
        Trace = trace ?? new TraceLog();
        Faults = faults ?? new FaultInjector();
        Memory = new PhysicalMemory(pageShift, ramBytes, layout ?? FrameLayout.Contiguous, Faults);
        PageShift = pageShift;
        Work = new DeferredWorkQueue(Trace);
        // Other drivers' MMIO lives in the upper half of the 52-bit physical space, apart from RAM and from
        // the PCI BAR window (PciTopology.AboveRam), so an MMIO pfn never aliases a BAR or a RAM frame.
        _nextMmioPfn = OtherMmioBase >> pageShift;
        Devices.Register(NullFile.Path, _ => DeviceOpenResult.Ok(NullFile.Instance));
    }

    /// <summary>First physical address of other drivers' MMIO (2^51): above every BAR, which the PCI
    /// topology places below it.</summary>
    public const ulong OtherMmioBase = 1UL << 51;

    /// <summary>log2 of the host PAGE_SIZE.</summary>
    public int PageShift { get; }

    /// <summary>The host PAGE_SIZE in bytes.</summary>
    public ulong PageSize => 1UL << PageShift;

    /// <summary>GUP's switches under the kernel profile.</summary>
    public GupBehavior GupBehavior { get; }

    /// <summary>RAM, frames and pins.</summary>
    public PhysicalMemory Memory { get; }

    /// <summary>The event stream.</summary>
    public TraceLog Trace { get; }

    /// <summary>What changed since the invariant checker last looked (for its incremental checks).</summary>
    public ChangeJournal Changes { get; } = new();

    /// <summary>Why the last system call or pinning-driver call on this host failed, whichever process or device made
    /// it, or none when it succeeded (<see cref="Refusals"/>): what a single-threaded driver such as the scenario
    /// runner reads after a step.</summary>
    public Refusal LastRefusal
    {
        get => _lastRefusal;
        set => _lastRefusal = value;
    }

    private Refusal _lastRefusal;

    /// <summary>Forgets <see cref="LastRefusal"/> if one is recorded (a call that succeeded; <see cref="Refusal.Forget"/>).</summary>
    internal void ForgetLastRefusal() => Refusal.Forget(ref _lastRefusal);

    /// <summary>Failure injection for fallible steps (<c>alloc</c>, <c>pin</c>, ...).</summary>
    public FaultInjector Faults { get; }

    /// <summary>Deferred work (schedule_work), run only when the host says so.</summary>
    public DeferredWorkQueue Work { get; }

    /// <summary>Device nodes: <c>/dev/null</c> from the start, drivers add theirs.</summary>
    public DeviceRegistry Devices { get; } = new();

    /// <summary>Where CPU accesses outside RAM go; null until the Pci layer installs one.</summary>
    public IMmioBus? MmioBus { get; set; }

    /// <summary>Live processes, in pid order.</summary>
    public IReadOnlyList<Process> Processes
    {
        get
        {
            lock (_gate)
            {
                return [.. _processes];
            }
        }
    }

    /// <summary>Creates a process with an empty address space and fds 0, 1 and 2 open on one <c>/dev/null</c>
    /// file (stdin, stdout, stderr, as a service manager starts a daemon), so its first open returns 3.
    /// <paramref name="memlockBytes"/> is RLIMIT_MEMLOCK (<see cref="ulong.MaxValue"/> = unlimited).</summary>
    public Process Spawn(string name, ulong memlockBytes = ulong.MaxValue, bool capIpcLock = false)
    {
        FdTable fds = FdTable.WithStandardStreams(new OpenFile(NullFile.Path, NullFile.Instance));
        var p = new Process(this, AllocatePid(), name, memlockBytes, capIpcLock, fds, null);
        AddProcess(p);
        return p;
    }

    /// <summary>The live process with this pid, or null.</summary>
    public Process? FindProcess(int pid)
    {
        lock (_gate)
        {
            return _processes.Find(p => p.Pid == pid);
        }
    }

    /// <summary>Hands out <paramref name="count"/> contiguous pfns above RAM that have no struct page (for
    /// other drivers' MMIO), aligned to <paramref name="alignFrames"/> (a power of two).</summary>
    public Pfn AllocateMmioPfns(ulong count, ulong alignFrames = 1)
    {
        lock (_gate)
        {
            ulong first = (_nextMmioPfn + alignFrames - 1) & ~(alignFrames - 1);
            _nextMmioPfn = first + count;
            return new Pfn(first);
        }
    }

    /// <summary>Whether <c>[first, first + count)</c> lies in MMIO handed out by <see cref="AllocateMmioPfns"/>
    /// (the allocator bumps, so the pfns from <see cref="OtherMmioBase"/> to its cursor).</summary>
    public bool IsOtherMmio(Pfn first, ulong count)
    {
        lock (_gate)
        {
            ulong baseFrame = OtherMmioBase >> PageShift;
            return first.Value >= baseFrame && count <= _nextMmioPfn - baseFrame && first.Value - baseFrame <= _nextMmioPfn - baseFrame - count;
        }
    }

    /// <summary>A CPU load from a physical address: RAM, else the MMIO bus, else all-ones (master abort).</summary>
    public void ReadPhysical(PhysAddr address, Span<byte> destination)
    {
        if (!Memory.Read(address, destination) && !(MmioBus?.TryRead(address, destination) ?? false))
        {
            destination.Fill(0xff);
        }
    }

    /// <summary>A CPU store to a physical address: RAM, else the MMIO bus, else dropped.</summary>
    public void WritePhysical(PhysAddr address, ReadOnlySpan<byte> source)
    {
        if (!Memory.Write(address, source))
        {
            MmioBus?.TryWrite(address, source);
        }
    }

    internal int AllocatePid()
    {
        lock (_gate)
        {
            return _nextPid++;
        }
    }

    internal void AddProcess(Process p)
    {
        lock (_gate)
        {
            _processes.Add(p);
        }
    }

    internal void RemoveProcess(Process p)
    {
        lock (_gate)
        {
            _processes.Remove(p);
        }
    }
}
