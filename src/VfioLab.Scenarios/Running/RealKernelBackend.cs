using VfioLab.Abi;
using VfioLab.Scenarios.Conformance;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// The real kernel behind a <see cref="ScenarioSession"/>: the scenario's first process is the kernel's process (this
/// one, or an agent process that can fork), its system calls go to <see cref="IRealKernel.Syscalls"/>, a <c>fork</c> makes
/// a real child (<see cref="IRealKernel.Fork"/>) whose steps run on it, group paths and device names are translated to
/// the machine's, and what only the model can answer is named (<see cref="ModelOnlyReason"/>) rather than run.
/// </summary>
/// <remarks>Devices, DMA, eventfds and interrupts are driven through the first process's fds only: such steps of a
/// forked child are model-only.</remarks>
internal sealed class RealKernelBackend
{
    // Step kinds the real kernel answers through the same step code as the model (system calls, and the host
    // operations IRealKernel offers). Any other kind is model-only, so a step kind added later is never run against
    // the model's processes by mistake.
    private static readonly HashSet<string> RealKinds = new(StringComparer.Ordinal)
    {
        "mmap", "mmap_region", "munmap", "write", "read", "exit", "set_rlimit", "open", "close", "get_api_version",
        "check_extension", "set_iommu", "group_get_status", "group_set_container", "group_unset_container",
        "get_device_fd", "device_get_info", "device_get_region_info", "device_reset", "pci_command", "pci_hot_reset",
        "iommu_get_info", "map_dma", "unmap_dma", "dirty_pages", "ioctl", "dma", "check", "device_get_irq_info", "set_irqs",
        "device_feature", "region_read", "region_write", "eventfd", "eventfd_read", "device_interrupt",
    };

    private readonly ScenarioDocument _doc;
    private readonly Dictionary<string, int> _deviceFds = new(StringComparer.Ordinal);
    private readonly Dictionary<int, int> _groupContainers = [];
    private readonly Dictionary<string, int> _deviceContainers = new(StringComparer.Ordinal);
    // The trigger eventfd VFIO holds for each (device fd, IRQ index, vector), as the last successful SET_IRQS
    // DATA_EVENTFD | ACTION_TRIGGER left it: what a device_interrupt waits on.
    private readonly Dictionary<(int DeviceFd, uint Index, uint Vector), int> _triggers = [];
    // The scenario's processes that run on the real kernel, by the name steps give them: the first, and the children
    // forked from it (in order).
    private readonly Dictionary<string, RealProcess> _live = new(StringComparer.Ordinal);
    private readonly ulong _baseline;

    public RealKernelBackend(ScenarioDocument doc, IRealKernel kernel)
    {
        _doc = doc;
        Kernel = kernel;
        ProcessSpec? p = doc.DefaultProcess;
        Check(kernel.SetMemlockLimit(p?.Memlock ?? ProcessSpec.DefaultMemlock), "setrlimit(RLIMIT_MEMLOCK)");
        Check(kernel.SetCapIpcLock(p?.CapIpcLock ?? false), "capset(CAP_IPC_LOCK)");
        _baseline = kernel.LockedVmBytes();
    }

    /// <summary>The kernel's process stands for the session's first process, called <paramref name="name"/> (the
    /// scenario's first declared process, or the host's default one).</summary>
    public void Begin(string name)
    {
        ProcessName = name;
        _live[name] = new RealProcess(Kernel, _baseline);
        if (Kernel.CannotFork is not null)
        {
            return;
        }
        // The other declared processes are processes of their own beside the first, with their own limits.
        foreach (ProcessSpec other in _doc.Processes.Where(p => p.Name != name))
        {
            IRealKernel process = Kernel.StartProcess() ?? throw new InvalidOperationException($"process {other.Name}: the real kernel started no process");
            _live[other.Name] = new RealProcess(process, 0);
            Check(process.SetMemlockLimit(other.Memlock), $"setrlimit(RLIMIT_MEMLOCK) of {other.Name}");
            Check(process.SetCapIpcLock(other.CapIpcLock), $"capset(CAP_IPC_LOCK) of {other.Name}");
        }
    }

    /// <summary>The first process's kernel.</summary>
    public IRealKernel Kernel { get; }

    /// <summary>The scenario's first process (<see cref="Begin"/>).</summary>
    public string? ProcessName { get; private set; }

    private bool FirstExited => ProcessName is null || _live[ProcessName].Exited;

    /// <summary>The kernel of the scenario process called <paramref name="name"/> (the first when null).</summary>
    public IRealKernel KernelOf(string? name) => _live[name ?? ProcessName!].Kernel;

    /// <summary>The system calls of the scenario process called <paramref name="name"/> (the first when null).</summary>
    public ISyscallSurface SyscallsOf(string? name) => KernelOf(name).Syscalls;

    /// <summary>The locked_vm of the scenario process called <paramref name="name"/>, counted from the scenario's
    /// start (the runtime's own, if any, left out).</summary>
    public ulong LockedVmOf(string name)
    {
        RealProcess p = _live[name];
        ulong now = p.Kernel.LockedVmBytes();
        return now - Math.Min(p.Baseline, now);
    }

    /// <summary>fork(2) of the process called <paramref name="parent"/>: the child's pid, known from now on as
    /// <paramref name="child"/>, or -errno.</summary>
    public long Fork(string parent, string child)
    {
        long pid = _live[parent].Kernel.Fork(out IRealKernel? forked);
        if (pid >= 0 && forked is not null)
        {
            _live[child] = new RealProcess(forked, 0);
        }
        return pid;
    }

    /// <summary>Whether device and container bookkeeping applies to the process of <paramref name="name"/> (the first's fds alone
    /// are tracked).</summary>
    public bool IsFirst(string? name) => name is null || name == ProcessName;

    /// <summary>Why <paramref name="step"/> is model-only on this kernel, or null when it runs here.</summary>
    public string? ModelOnlyReason(ScenarioStep step)
    {
        string? process = step.Process ?? ProcessName;
        if (step.Kind == "exec")
        {
            return "exec: the real kernel's processes go on running the scenario, they exec nothing";
        }
        if (step.Kind != "fork" && !RealKinds.Contains(step.Kind))
        {
            return $"{step.Kind}: the real kernel has no way to answer or observe it from user space";
        }
        if (process is null || !_live.TryGetValue(process, out RealProcess? p))
        {
            return $"process {process}: only the scenario's first process runs on the real kernel (and, when the runner's processes can fork, every process)";
        }
        if (step.Kind == "check")
        {
            if (!step.Has("locked_vm"))
            {
                return "check: only locked_vm is observable on the real kernel";
            }
            string who = step.Args.GetMap("locked_vm").GetString("process");
            if (!_live.TryGetValue(who, out RealProcess? w))
            {
                return $"locked_vm of {who}: only the scenario's first process runs on the real kernel (and, when the runner's processes can fork, every process)";
            }
            return w.Exited ? $"locked_vm of {who}: it exited, and a dead process's mm is not in /proc" : null;
        }
        if (p.Exited)
        {
            return p.Kernel.CannotFork is null
                ? $"process {process} exited on the real kernel: it has no system calls to make"
                : "the process exited: this process stood for it until then, and its mm (unlike an exited one's) lives on";
        }
        if (step.Kind == "fork" && p.Kernel.CannotFork is { } cannot)
        {
            return $"fork: {cannot}";
        }
        if (step.Kind is "dma" or "device_interrupt" or "eventfd" or "eventfd_read" && (!IsFirst(step.Process) || FirstExited))
        {
            return $"{step.Kind}: devices and eventfds are driven through the first process's fds, and {(FirstExited ? "it exited" : $"this is {process}'s step")}";
        }
        if (step.Kind == "mmap")
        {
            string backing = step.Args.GetStringOrNull("backing") ?? "anonymous";
            if (backing == "pfnmap")
            {
                return "mmap backing pfnmap: another driver's MMIO is the model's";
            }
            if (backing == "hugetlb-1g")
            {
                return "mmap backing hugetlb-1g: the rig reserves no 1 GiB pages";
            }
            if (step.Has("at"))
            {
                return "mmap at a fixed address could replace the runtime's own memory in a real process";
            }
        }
        return null;
    }

    /// <summary>The path as the machine names it: <c>/dev/vfio/N</c> of a scenario group becomes the machine's group.</summary>
    public string PathOf(string path)
    {
        const string Prefix = "/dev/vfio/";
        if (path.StartsWith(Prefix, StringComparison.Ordinal) && ulong.TryParse(path.AsSpan(Prefix.Length), out ulong group) &&
            Kernel.GroupOf(group) is { } real)
        {
            return Prefix + real.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return path;
    }

    public string DeviceNameOf(string name) => Kernel.DeviceNameOf(name);

    /// <summary>Group fd <paramref name="groupFd"/> was set into container fd <paramref name="containerFd"/>.</summary>
    public void GroupSet(int groupFd, int containerFd) => _groupContainers[groupFd] = containerFd;

    /// <summary>A device fd was opened, through group fd <paramref name="groupFd"/>, for the scenario's device called
    /// <paramref name="name"/> (its address).</summary>
    public void DeviceOpened(string name, int groupFd, int fd)
    {
        DeviceSpec? d = _doc.Devices.FirstOrDefault(x => x.Address == name);
        if (d is not null)
        {
            _deviceFds[d.Name] = fd;
            if (_groupContainers.TryGetValue(groupFd, out int container))
            {
                _deviceContainers[d.Name] = container;
            }
        }
    }

    /// <summary>An fd of this process is closed: a device fd among them no longer reaches its device.</summary>
    public void Closed(int fd)
    {
        foreach (string name in _deviceFds.Where(kv => kv.Value == fd).Select(kv => kv.Key).ToList())
        {
            _deviceFds.Remove(name);
        }
        // Closing a device fd releases its interrupts; closing an eventfd VFIO holds does not (VFIO keeps a reference).
        foreach ((int DeviceFd, uint Index, uint Vector) key in _triggers.Keys.Where(k => k.DeviceFd == fd).ToList())
        {
            _triggers.Remove(key);
        }
        _groupContainers.Remove(fd);
    }

    /// <summary>A SET_IRQS DATA_EVENTFD | ACTION_TRIGGER on device fd <paramref name="deviceFd"/> succeeded: vectors
    /// <paramref name="start"/> on signal <paramref name="fds"/> (-1: none), or, with no fds, none of them from
    /// <paramref name="start"/> (count 0 tears the whole index down).</summary>
    public void TriggersSet(int deviceFd, uint index, uint start, uint count, IReadOnlyList<int> fds)
    {
        if (fds.Count == 0)
        {
            foreach ((int DeviceFd, uint Index, uint Vector) key in _triggers.Keys.Where(k => k.DeviceFd == deviceFd && k.Index == index &&
                (count == 0 || (k.Vector >= start && k.Vector - start < count))).ToList())
            {
                _triggers.Remove(key);
            }
            return;
        }
        for (int i = 0; i < fds.Count; i++)
        {
            _triggers[(deviceFd, index, start + (uint)i)] = fds[i];
        }
    }

    /// <summary>The trigger eventfd of <paramref name="device"/>'s IRQ <paramref name="index"/> vector
    /// <paramref name="vector"/>, or -1.</summary>
    public int TriggerOf(string device, uint index, uint vector) =>
        DeviceFdOf(device) is { } fd && _triggers.TryGetValue((fd, index, vector), out int e) ? e : -1;

    /// <summary>The open device fd through which the scenario's device <paramref name="device"/> is driven, or null.</summary>
    public int? DeviceFdOf(string device) => _deviceFds.TryGetValue(device, out int fd) ? fd : null;

    /// <summary>The container fd the device's group was set into when its fd was opened, or null.</summary>
    public int? ContainerFdOf(string device) => _deviceContainers.TryGetValue(device, out int fd) ? fd : null;

    /// <summary><c>exit</c> of the process called <paramref name="name"/> (the first when null): an agent process
    /// exits for real; this process closes the fds and mappings it made for the scenario, as a process's exit
    /// would.</summary>
    public void Exit(string? name)
    {
        RealProcess p = _live[name ?? ProcessName!];
        p.Kernel.Syscalls.Exit();
        p.Exited = true;
        if (IsFirst(name))
        {
            _deviceFds.Clear();
            _groupContainers.Clear();
        }
    }

    /// <summary>After the last step: every process still running exits (the children first), releasing every fd and
    /// mapping the scenario left, and this process has CAP_IPC_LOCK back.</summary>
    public void End()
    {
        foreach (RealProcess p in _live.Values.Reverse().Where(p => !p.Exited))
        {
            p.Kernel.Syscalls.Exit();
            p.Exited = true;
        }
        Kernel.SetCapIpcLock(true);
        Kernel.SetMemlockLimit(ulong.MaxValue);
    }

    /// <summary>A scenario process on the real kernel; <see cref="Baseline"/> is the locked_vm it had before the
    /// scenario (the runtime's own).</summary>
    private sealed class RealProcess(IRealKernel kernel, ulong baseline)
    {
        public IRealKernel Kernel { get; } = kernel;

        public ulong Baseline { get; } = baseline;

        public bool Exited { get; set; }
    }

    private static void Check(long ret, string what)
    {
        if (ret < 0)
        {
            throw new InvalidOperationException($"{what} failed on the real kernel: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
