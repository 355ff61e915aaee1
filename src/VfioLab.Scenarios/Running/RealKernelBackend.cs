using VfioLab.Abi;
using VfioLab.Scenarios.Conformance;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// The real kernel behind a <see cref="ScenarioSession"/>: the scenario's first process is this process, its system
/// calls go to <see cref="IRealKernel.Syscalls"/>, group paths and device names are translated to the machine's, and
/// what only the model can answer is named (<see cref="ModelOnlyReason"/>) rather than run.
/// </summary>
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
    private readonly ulong _baselineLockedVm;
    private bool _exited;

    public RealKernelBackend(ScenarioDocument doc, IRealKernel kernel)
    {
        _doc = doc;
        Kernel = kernel;
        ProcessName = doc.DefaultProcess?.Name;
        ProcessSpec? p = doc.DefaultProcess;
        Check(kernel.SetMemlockLimit(p?.Memlock ?? ProcessSpec.DefaultMemlock), "setrlimit(RLIMIT_MEMLOCK)");
        Check(kernel.SetCapIpcLock(p?.CapIpcLock ?? false), "capset(CAP_IPC_LOCK)");
        _baselineLockedVm = kernel.LockedVmBytes();
    }

    public IRealKernel Kernel { get; }

    public ISyscallSurface Syscalls => Kernel.Syscalls;

    /// <summary>The scenario process this process stands for.</summary>
    public string? ProcessName { get; }

    /// <summary>This process's locked_vm counted from the scenario's start (the runtime's own, if any, left out).</summary>
    public ulong LockedVm => Kernel.LockedVmBytes() - Math.Min(_baselineLockedVm, Kernel.LockedVmBytes());

    /// <summary>Why <paramref name="step"/> is model-only on this kernel, or null when it runs here.</summary>
    public string? ModelOnlyReason(ScenarioStep step)
    {
        if (step.Kind is "fork" or "exec")
        {
            return $"{step.Kind}: the runner is a .NET process, which cannot {step.Kind} and go on running the scenario";
        }
        if (!RealKinds.Contains(step.Kind))
        {
            return $"{step.Kind}: the real kernel has no way to answer or observe it from user space";
        }
        if (step.Process is { } name && name != ProcessName)
        {
            return $"process {name}: only the scenario's first process runs on the real kernel";
        }
        if (_exited)
        {
            return "the process exited: this process stood for it until then, and its mm (unlike an exited one's) lives on";
        }
        if (step.Kind == "check")
        {
            if (!step.Has("locked_vm"))
            {
                return "check: only locked_vm is observable on the real kernel";
            }
            string who = step.Args.GetMap("locked_vm").GetString("process");
            return who == ProcessName ? null : $"locked_vm of {who}: only the scenario's first process runs on the real kernel";
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

    /// <summary><c>exit</c>: the fds and mappings this process made for the scenario go, as a process's would.</summary>
    public void Exit()
    {
        Kernel.Syscalls.Exit();
        _deviceFds.Clear();
        _groupContainers.Clear();
        _exited = true;
    }

    /// <summary>After the last step: every fd and mapping the scenario left is released, and CAP_IPC_LOCK is back.</summary>
    public void End()
    {
        if (!_exited)
        {
            Kernel.Syscalls.Exit();
        }
        Kernel.SetCapIpcLock(true);
        Kernel.SetMemlockLimit(ulong.MaxValue);
    }

    private static void Check(long ret, string what)
    {
        if (ret < 0)
        {
            throw new InvalidOperationException($"{what} failed on the real kernel: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
