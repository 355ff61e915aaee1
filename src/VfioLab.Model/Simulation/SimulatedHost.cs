using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Simulation;

/// <summary>
/// A whole simulated machine, the provider side of DESIGN.md: host memory and processes, the IOMMU
/// units and groups, the PCI topology, and the VFIO core with its device nodes. Built step by step
/// (add devices, then <see cref="Seal"/>), then driven through processes' system calls.
/// </summary>
/// <remarks>Building is single-threaded; after <see cref="Seal"/> only the layers' own locks apply.</remarks>
internal sealed class SimulatedHost
{
    private readonly Dictionary<string, SimulatedDevice> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<int, IommuGroup> _groups = [];
    private readonly Dictionary<IommuHardwareProfile, IommuUnit> _units = new(ReferenceEqualityComparer.Instance);
    private readonly List<IVfioIommuDriver> _iommuDrivers = [];
    private bool _sealed;

    public SimulatedHost(ulong ramBytes, int pageShift, FrameLayout layout, IommuHardwareProfile iommu, KernelSettings kernel)
    {
        Trace = new TraceLog();
        Faults = new FaultInjector();
        Machine = new Machine(ramBytes, pageShift, layout, Trace, Faults, kernel.GupBehavior());
        Pci = PciTopology.AboveRam(ramBytes, 1UL << pageShift);
        Machine.MmioBus = new PciMmioBus(Pci);
        DefaultIommu = iommu;
        Kernel = kernel;
        Vfio = new VfioSubsystem(_iommuDrivers, Trace);
        VfioPci = new VfioPciDriver(Pci, IommuGroupOf, kernel.VfioPciBehavior());
    }

    /// <summary>The vfio-pci driver every PCI device bound to VFIO uses (the module, with its dev_sets).</summary>
    public VfioPciDriver VfioPci { get; }

    /// <summary>Memory, processes, files.</summary>
    public Machine Machine { get; }

    /// <summary>PCI functions and BAR placement.</summary>
    public PciTopology Pci { get; }

    /// <summary>The VFIO core.</summary>
    public VfioSubsystem Vfio { get; }

    /// <summary>The host's IOMMU hardware profile (with the scenario's overrides).</summary>
    public IommuHardwareProfile DefaultIommu { get; }

    /// <summary>Behaviour profile and module parameters.</summary>
    public KernelSettings Kernel { get; }

    /// <summary>Event stream of every layer.</summary>
    public TraceLog Trace { get; }

    /// <summary>Injectable failures of every layer.</summary>
    public FaultInjector Faults { get; }

    /// <summary>Devices' rejected DMA: IOMMU faults and unsupported requests (the DMAR fault records or
    /// SMMU event queue, and AER, as the kernel would log them).</summary>
    public IommuFaultLog DmaFaults { get; } = new();

    /// <summary>Devices by scenario name.</summary>
    public IReadOnlyDictionary<string, SimulatedDevice> Devices => _devices;

    /// <summary>IOMMU groups by number.</summary>
    public IReadOnlyDictionary<int, IommuGroup> IommuGroups => _groups;

    /// <summary>Registers an IOMMU backend before <see cref="Seal"/> (type1, sPAPR).</summary>
    public void RegisterIommuDriver(IVfioIommuDriver driver)
    {
        EnsureBuilding();
        _iommuDrivers.Add(driver);
    }

    /// <summary>Registers the type1 backend configured from <see cref="Kernel"/> (profile switches and
    /// module parameters), before <see cref="Seal"/>.</summary>
    public Type1.VfioIommuType1Driver RegisterType1()
    {
        var driver = new Type1.VfioIommuType1Driver(Machine, Kernel.Type1Behavior());
        RegisterIommuDriver(driver);
        return driver;
    }

    /// <summary>The sPAPR TCE backend, when registered (its per-mm state outlives containers).</summary>
    public Spapr.VfioIommuSpaprTceDriver? SpaprDriver { get; private set; }

    /// <summary>Registers the sPAPR TCE backend (POWER) configured from <see cref="Kernel"/> (quirk
    /// <c>spapr-tce-current-mm</c>), before <see cref="Seal"/>.</summary>
    public Spapr.VfioIommuSpaprTceDriver RegisterSpapr()
    {
        var driver = new Spapr.VfioIommuSpaprTceDriver(Machine, Kernel.SpaprBehavior());
        RegisterIommuDriver(driver);
        SpaprDriver = driver;
        return driver;
    }

    /// <summary>Adds a PCI function behind <paramref name="iommu"/> (the host's unit when null) in IOMMU
    /// group <paramref name="groupNumber"/>, bound to <paramref name="binding"/> (Vfio or Host), looking as
    /// <paramref name="description"/> says (the default device when null).
    /// Returns an error message for impossible set-ups, or null.</summary>
    public string? AddPciDevice(string name, PciAddress address, IEnumerable<PciBarRequest> bars, DriverBinding binding,
        int groupNumber, IommuHardwareProfile? iommu = null, bool? isolatedMsi = null, PciDeviceDescription? description = null)
    {
        EnsureBuilding();
        if (_devices.ContainsKey(name))
        {
            return $"device name '{name}' is used twice";
        }
        if (Pci.TryGetFunction(address, out _))
        {
            return $"PCI address {address} is used twice";
        }
        string? error = GroupFor(groupNumber, iommu ?? DefaultIommu, isolatedMsi, out IommuGroup? group);
        if (error is not null)
        {
            return error;
        }
        PciFunction function;
        try
        {
            function = Pci.AddFunction(address, description ?? PciDeviceDescription.Default, bars);
        }
        catch (ArgumentException e)
        {
            return $"device '{name}': {e.Message}";
        }
        var member = new IommuGroupMember(function, binding);
        group!.AddMember(member);
        VfioDevice? vfio = null;
        if (binding == DriverBinding.Vfio)
        {
            VfioGroup vgroup = VfioGroupFor(group, VfioGroupType.Iommu);
            vfio = new VfioDevice(address.ToString(), vgroup, VfioPci, new VfioPciDevice(function, Machine.PageShift, VfioPci.Behavior), Faults);
            vgroup.AddDevice(vfio);
            VfioPci.AddDevice(vfio);
        }
        _devices.Add(name, new SimulatedDevice(name, member, group, function, vfio));
        return null;
    }

    /// <summary>Adds a mediated device in an emulated IOMMU group of its own.</summary>
    public string? AddMdevDevice(string name, Guid uuid, IVfioDeviceDriver vendorDriver, int groupNumber)
    {
        EnsureBuilding();
        if (_devices.ContainsKey(name))
        {
            return $"device name '{name}' is used twice";
        }
        if (_groups.ContainsKey(groupNumber))
        {
            return $"mdev '{name}' needs an emulated group of its own; group {groupNumber} is taken";
        }
        var group = new IommuGroup(groupNumber, null, faults: Faults, trace: Trace);
        _groups.Add(groupNumber, group);
        var member = new IommuGroupMember(uuid);
        group.AddMember(member);
        VfioGroup vgroup = VfioGroupFor(group, VfioGroupType.EmulatedIommu);
        var vfio = new VfioDevice(uuid.ToString(), vgroup, vendorDriver, null, Faults);
        vgroup.AddDevice(vfio);
        _devices.Add(name, new SimulatedDevice(name, member, group, null, vfio));
        return null;
    }

    /// <summary>Ends building: registers <c>/dev/vfio/vfio</c> and one node per VFIO group.</summary>
    public void Seal()
    {
        EnsureBuilding();
        _sealed = true;
        Machine.Devices.Register("/dev/vfio/vfio", _ =>
        {
            // vfio_fops_open: kzalloc of the container (ENOMEM), the open's only fallible step.
            if (Faults.ShouldFail(FaultSite.ContainerAlloc))
            {
                return DeviceOpenResult.Fail(Errno.ENOMEM);
            }
            VfioContainer c = Vfio.CreateContainer();
            return DeviceOpenResult.Ok(new VfioContainerFile(c));
        });
        foreach (VfioGroup g in Vfio.Groups)
        {
            VfioGroup group = g;
            Machine.Devices.Register($"/dev/vfio/{group.Number}", _ =>
            {
                var file = new VfioGroupFile(group);
                Errno e = group.Open(file);
                return e == Errno.None ? DeviceOpenResult.Ok(file) : DeviceOpenResult.Fail(e);
            });
        }
    }

    /// <summary>A new process (a thread-group leader with its own mm).</summary>
    public Process Spawn(string name, ulong memlockBytes, bool capIpcLock) => Machine.Spawn(name, memlockBytes, capIpcLock);

    // iommu_group_get for a PCI function: the group of the device it belongs to, while it is a member.
    private int? IommuGroupOf(PciFunction function)
    {
        foreach (SimulatedDevice d in _devices.Values)
        {
            if (ReferenceEquals(d.Function, function) && d.Group.FindMember(d.DeviceName) is not null)
            {
                return d.Group.Id;
            }
        }
        return null;
    }

    private string? GroupFor(int number, IommuHardwareProfile profile, bool? isolatedMsi, out IommuGroup? group)
    {
        if (_groups.TryGetValue(number, out group))
        {
            if (group.IsEmulated)
            {
                return $"IOMMU group {number} is an mdev's emulated group";
            }
            if (!ReferenceEquals(group.Unit!.Profile, profile))
            {
                return $"devices of IOMMU group {number} sit behind different IOMMUs";
            }
            return null;
        }
        // One IOMMU instance per distinct profile object: devices given the same per-device
        // settings by the caller share a unit only if the caller passes the same profile.
        if (!_units.TryGetValue(profile, out IommuUnit? unit))
        {
            unit = new IommuUnit(_units.Count, profile, Faults, Trace);
            _units.Add(profile, unit);
        }
        group = new IommuGroup(number, unit, null, isolatedMsi, Faults, Trace);
        _groups.Add(number, group);
        return null;
    }

    private VfioGroup VfioGroupFor(IommuGroup group, VfioGroupType type)
    {
        VfioGroup? existing = Vfio.FindGroup(group.Id);
        if (existing is not null)
        {
            return existing;
        }
        var created = new VfioGroup(group.Id, type, new IommuGroupBacking(group)) { NotAContainerError = Kernel.GroupNotAContainerError };
        Vfio.AddGroup(created);
        return created;
    }

    private void EnsureBuilding()
    {
        if (_sealed)
        {
            throw new InvalidOperationException("the simulated host is already sealed");
        }
    }

    /// <summary>The physical range of RAM.</summary>
    public ByteRange Ram => new(0, (Machine.Memory.FrameCount << Machine.PageShift) - 1);
}
