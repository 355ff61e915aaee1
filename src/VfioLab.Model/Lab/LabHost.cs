using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Simulation;

namespace VfioLab.Lab;

/// <summary>
/// A simulated host built by <see cref="LabHostBuilder"/>: its processes (each with a system-call surface the typed
/// client runs on), its devices (which issue DMA and can be released, unplugged or reset), the host's own actions
/// (deferred work), inspection (containers, pinned pages, state digest), the invariant checker and the trace.
/// </summary>
/// <remarks>Thread-safe as the kernel is: processes may call from several threads; the builder side
/// (<see cref="Spawn"/>, subscriptions) is meant for the test's own thread.</remarks>
public sealed class LabHost
{
    private readonly Dictionary<Process, LabProcess> _processes = new(ReferenceEqualityComparer.Instance);
    private readonly List<LabProcess> _order = [];
    private readonly Dictionary<string, LabDevice> _devices = new(StringComparer.Ordinal);
    private readonly List<Action<LabTraceEvent>> _listeners = [];
    private readonly InvariantChecker _checker;
    private readonly object _gate = new();
    private bool _traceHooked;

    /// <summary>The checker behind <see cref="CheckInvariants()"/> and <see cref="CheckChangedInvariants()"/> (tests set
    /// <see cref="InvariantChecker.SweepAlways"/> on it to compare the incremental check with the full sweep).</summary>
    internal InvariantChecker Checker => _checker;

    internal LabHost(SimulatedHost host)
    {
        Simulated = host;
        _checker = new InvariantChecker(host);
        foreach (SimulatedDevice d in host.Devices.Values)
        {
            _devices.Add(d.Name, new LabDevice(this, d));
        }
        // A host built elsewhere (a scenario's) may have processes already.
        foreach (Process p in host.Machine.Processes)
        {
            Adopt(p, p.Name);
        }
    }

    /// <summary>The CPU page size (PAGE_SIZE) in bytes.</summary>
    public ulong PageSize => Simulated.Machine.PageSize;

    /// <summary>The name of the host's IOMMU hardware profile (<c>vt-d</c>, <c>amd-vi</c>, <c>smmu-v3</c>, <c>spapr-tce</c>),
    /// as the kernel's driver would name itself.</summary>
    public string IommuName => Simulated.DefaultIommu.Name;

    /// <summary>The kernel profile the host runs (<see cref="KernelProfiles"/>).</summary>
    public string KernelProfile => Simulated.Kernel.Profile;

    /// <summary>The quirks switched on (<see cref="KernelQuirks"/>).</summary>
    public IReadOnlyList<string> Quirks => Simulated.Kernel.Quirks;

    /// <summary>When the host checks its invariants by itself (default <see cref="InvariantChecking.OnDemand"/>).</summary>
    public InvariantChecking Checking { get; set; }

    /// <summary>Every process spawned or forked so far, exited ones included, in creation order.</summary>
    public IReadOnlyList<LabProcess> Processes
    {
        get
        {
            // Processes forked below the public API (a surface's Fork) join the list the first time it is read.
            foreach (Process p in Simulated.Machine.Processes)
            {
                Adopt(p, p.Name);
            }
            lock (_gate)
            {
                return [.. _order];
            }
        }
    }

    /// <summary>The devices, in the order they were added.</summary>
    public IReadOnlyList<LabDevice> Devices => [.. _devices.Values];

    /// <summary>The VFIO containers opened so far and not yet released.</summary>
    public IReadOnlyList<LabContainer> Containers => [.. Simulated.Vfio.Containers.Select(c => new LabContainer(c))];

    /// <summary>Host frames with a non-zero pin count.</summary>
    public ulong PinnedPages => Simulated.Machine.Memory.PinnedFrameCount;

    /// <summary>Pins held on host frames, counted with multiplicity (a frame pinned twice counts twice).</summary>
    public ulong TotalPins => Simulated.Machine.Memory.TotalPins;

    /// <summary>How many times frame <paramref name="pfn"/> is pinned (by type1, drivers, sPAPR pre-registration).</summary>
    public ulong PinCount(ulong pfn) => Simulated.Machine.Memory.PinCount(new Addressing.Pfn(pfn));

    /// <summary>Work items queued for the host's workqueue and not yet run (<see cref="RunDeferredWork"/>).</summary>
    public int PendingDeferredWork => Simulated.Machine.Work.Pending;

    /// <summary>Why the last system call of any process, or the last pinning-driver call of any device
    /// (<c>LabDevice.PinPages</c>, <see cref="LabDevice.DmaRw"/>), failed;
    /// null when it succeeded. For a caller that drives one call at a time; with several threads, read
    /// <see cref="LabProcess.LastRefusal"/>.</summary>
    public LabRefusal? LastRefusal => LabRefusal.From(Simulated.Machine.LastRefusal);

    /// <summary>The process named <paramref name="name"/>.</summary>
    /// <exception cref="LabConfigurationException">No process has that name.</exception>
    public LabProcess Process(string name) => TryGetProcess(name, out LabProcess? p)
        ? p!
        : throw new LabConfigurationException($"no process named '{name}'") { Subject = name };

    /// <summary>Looks a process up by name (the newest, if a name was reused).</summary>
    public bool TryGetProcess(string name, out LabProcess? process)
    {
        lock (_gate)
        {
            process = _order.LastOrDefault(p => p.Name == name);
        }
        return process is not null;
    }

    /// <summary>The device named <paramref name="name"/>.</summary>
    /// <exception cref="LabConfigurationException">No device has that name.</exception>
    public LabDevice Device(string name) => _devices.TryGetValue(name, out LabDevice? d)
        ? d
        : throw new LabConfigurationException($"no device named '{name}'") { Subject = name };

    /// <summary>Looks a device up by name.</summary>
    public bool TryGetDevice(string name, out LabDevice? device) => _devices.TryGetValue(name, out device);

    /// <summary>Starts a new process with RLIMIT_MEMLOCK <paramref name="memlockBytes"/> and, if asked, CAP_IPC_LOCK.
    /// Like a real process it starts with fds 0, 1 and 2 open.</summary>
    public LabProcess Spawn(string name, ulong memlockBytes = LabHostBuilder.DefaultMemlockBytes, bool capIpcLock = false) =>
        Wide(this).Adopt(Simulated.Spawn(name, memlockBytes, capIpcLock), name);

    /// <summary>Runs the host's deferred work (the workqueue: old-style accounting, notifier unregistration) now.</summary>
    /// <returns>How many work items ran.</returns>
    public int RunDeferredWork() => Wide(this).Simulated.Machine.Work.RunAll();

    /// <summary>Evaluates every invariant (<see cref="InvariantNames"/>) over the whole host now.</summary>
    /// <returns>The violations found; empty when the state is consistent.</returns>
    /// <remarks>A state the user created through calls Linux allows, which an invariant would flag, is a hazard, not
    /// a violation (<see cref="CheckInvariants(out IReadOnlyList{LabViolation})"/> returns those too).</remarks>
    public IReadOnlyList<LabViolation> CheckInvariants() => CheckInvariants(out _);

    /// <summary>Evaluates every invariant as <see cref="CheckInvariants()"/> does, and returns apart the hazards the
    /// user created through calls Linux allows (docs/robustness.md lists them).</summary>
    /// <param name="hazards">Each with <see cref="LabViolation.Hazard"/> saying why it is the user's doing.</param>
    /// <returns>The violations of the model's invariants; empty when the state is consistent.</returns>
    public IReadOnlyList<LabViolation> CheckInvariants(out IReadOnlyList<LabViolation> hazards) => Split(_checker.Check(), out hazards);

    /// <summary>Evaluates the invariants over what changed since the last check (<see cref="CheckInvariants()"/> or this):
    /// when every call since then was a type1 MAP_DMA or UNMAP_DMA and the host was consistent at that check, only
    /// the IOVA ranges those calls changed and the totals they move; otherwise the whole host, as
    /// <see cref="CheckInvariants()"/>. Starting from a consistent host it reports the same invariants broken as the
    /// full sweep, at a cost that follows what changed (what <see cref="InvariantChecking.AfterEveryCall"/> and
    /// <c>vfiolab run</c> use after each call or step; keep a full sweep at the end).</summary>
    /// <returns>The violations found; empty when the state is consistent.</returns>
    public IReadOnlyList<LabViolation> CheckChangedInvariants() => CheckChangedInvariants(out _);

    /// <summary><see cref="CheckChangedInvariants()"/>, with the hazards the user created apart, as
    /// <see cref="CheckInvariants(out IReadOnlyList{LabViolation})"/> returns them.</summary>
    /// <param name="hazards">Each with <see cref="LabViolation.Hazard"/> saying why it is the user's doing.</param>
    /// <returns>The violations of the model's invariants; empty when the state is consistent.</returns>
    public IReadOnlyList<LabViolation> CheckChangedInvariants(out IReadOnlyList<LabViolation> hazards) => Split(_checker.CheckChanges(), out hazards);

    /// <summary>The observable VFIO state as text, one line per object (containers, mappings, domains, groups, devices,
    /// pins, charges): equal before and after a call that failed, as the model promises.</summary>
    public string Digest() => string.Join('\n', StateDigest.Of(Simulated).Lines);

    /// <summary>Calls <paramref name="listener"/> with every trace event from now on, until the returned handle is disposed.
    /// Listeners run on the thread that caused the event, under whatever lock it holds: they must not call back into the host.</summary>
    public IDisposable SubscribeTrace(Action<LabTraceEvent> listener)
    {
        lock (_gate)
        {
            _listeners.Add(listener);
            if (!_traceHooked)
            {
                _traceHooked = true;
                Simulated.Trace.Subscribe(Dispatch);
            }
        }
        return new Subscription(this, listener);
    }

    internal SimulatedHost Simulated { get; }

    internal LabObjectIds Ids { get; } = new();

    internal LabProcess Adopt(Process process, string name)
    {
        lock (_gate)
        {
            if (!_processes.TryGetValue(process, out LabProcess? lab))
            {
                lab = new LabProcess(this, process, name);
                _processes.Add(process, lab);
                _order.Add(lab);
            }
            return lab;
        }
    }

    internal LabProcess? Find(Process process)
    {
        lock (_gate)
        {
            return _processes.GetValueOrDefault(process);
        }
    }

    internal void AfterCall(string call, LabProcess caller)
    {
        if (Checking != InvariantChecking.AfterEveryCall)
        {
            return;
        }
        IReadOnlyList<LabViolation> found = CheckChangedInvariants();
        if (found.Count > 0)
        {
            throw new InvariantViolationException($"{call} of {caller}", found);
        }
    }

    /// <summary>Marks the change journal wide (a lab entry point that is not a system call changed something no
    /// IOVA range describes) and returns <paramref name="host"/>.</summary>
    internal static LabHost Wide(LabHost host)
    {
        host.Simulated.Machine.Changes.MarkWide();
        return host;
    }

    private static LabViolation[] Split(IReadOnlyList<InvariantViolation> all, out IReadOnlyList<LabViolation> hazards)
    {
        // A clean check returns an empty array: tested by its type first, without an interface call (issue 16: after
        // every call of a checked run).
        if (all is InvariantViolation[] { Length: 0 } || all.Count == 0)
        {
            hazards = [];
            return [];
        }
        hazards = [.. all.Where(v => v.Hazard is not null).Select(v => new LabViolation(v.Invariant, v.Message) { Hazard = v.Hazard })];
        return [.. all.Where(v => v.Hazard is null).Select(v => new LabViolation(v.Invariant, v.Message))];
    }
    private void Dispatch(TraceEvent e)
    {
        Action<LabTraceEvent>[] listeners;
        lock (_gate)
        {
            listeners = [.. _listeners];
        }
        if (listeners.Length == 0)
        {
            return;
        }
        var ev = new LabTraceEvent(e.Sequence, e.Kind, e.Pid, e.Fields);
        foreach (Action<LabTraceEvent> l in listeners)
        {
            l(ev);
        }
    }

    private sealed class Subscription(LabHost host, Action<LabTraceEvent> listener) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            lock (host._gate)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    host._listeners.Remove(listener);
                }
            }
        }
    }
}
