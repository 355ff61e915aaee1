using System.Numerics;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Lab;

/// <summary>
/// Describes a simulated host in code and builds it: memory and page size, the IOMMU hardware with its overrides,
/// the kernel profile with quirks and module parameters, PCI functions and mediated devices with their groups,
/// and the processes that will use VFIO. Each call returns the builder; <see cref="Build"/> validates the whole
/// description and throws <see cref="LabConfigurationException"/> naming what cannot be built.
/// </summary>
/// <example>
/// <code>
/// LabHost host = new LabHostBuilder()
///     .WithMemory(16UL &lt;&lt; 30)
///     .WithKernel(KernelProfiles.Linux618)
///     .AddPciDevice("gpu", "0000:01:00.0", d =&gt; d.Bar(0, 16UL &lt;&lt; 20).Group(1))
///     .AddProcess("qemu", memlockBytes: 32UL &lt;&lt; 30)
///     .Build();
/// using var container = VfioLab.Client.Container.Open(host.Process("qemu").Syscalls);
/// </code>
/// </example>
public sealed class LabHostBuilder
{
    /// <summary>Linux's default RLIMIT_MEMLOCK since 5.16 (8 MiB), what a process gets unless told otherwise.</summary>
    public const ulong DefaultMemlockBytes = 8UL << 20;

    /// <summary>RLIM_INFINITY: no memlock limit.</summary>
    public const ulong Unlimited = ulong.MaxValue;

    private readonly List<DeviceEntry> _devices = [];
    private readonly List<(string Name, ulong Memlock, bool Cap)> _processes = [];
    private readonly List<ReservedRegion> _reserved = [];
    private readonly List<string> _quirks = [];
    private ulong _memory = 16UL << 30;
    private ulong _pageSize = 4096;
    private FrameLayout _frames = FrameLayout.Contiguous;
    private IommuKind _iommu = IommuKind.VtD;
    private ulong? _pageSizes;
    private ByteRange? _aperture;
    private string _profile = KernelProfiles.Seeds;
    private uint _dmaEntryLimit = 65535;
    private bool _disableHugepages;
    private bool _allowUnsafeInterrupts;
    private bool _strictMmioMaps = true;

    /// <summary>Host RAM in bytes (default 16 GiB), a multiple of the page size.</summary>
    public LabHostBuilder WithMemory(ulong bytes)
    {
        _memory = bytes;
        return this;
    }

    /// <summary>The CPU page size (PAGE_SIZE): 4 KiB (default), 16 KiB or 64 KiB.</summary>
    public LabHostBuilder WithPageSize(ulong bytes)
    {
        if (bytes is not (4096 or 16384 or 65536))
        {
            throw new LabConfigurationException($"page size 0x{bytes:x} is not 4 KiB, 16 KiB or 64 KiB") { Subject = "host", Setting = "page_size" };
        }
        _pageSize = bytes;
        return this;
    }

    /// <summary>Host frames handed out in physically contiguous runs of <paramref name="runPages"/> pages, scattered
    /// over RAM in an order fixed by <paramref name="seed"/> (default: one contiguous run).</summary>
    public LabHostBuilder WithScatteredFrames(ulong runPages, ulong seed = 1)
    {
        if (runPages == 0)
        {
            throw new LabConfigurationException("scattered frames need runs of at least one page") { Subject = "host", Setting = "frames" };
        }
        _frames = FrameLayout.ScatteredRuns(runPages, seed);
        return this;
    }

    /// <summary>The host's IOMMU hardware (default <see cref="IommuKind.VtD"/>); <see cref="IommuKind.SpaprTce"/>
    /// registers the sPAPR TCE backend instead of type1.</summary>
    public LabHostBuilder WithIommu(IommuKind kind)
    {
        _iommu = kind;
        return this;
    }

    /// <summary>Overrides the IOMMU's page sizes (each a power of two).</summary>
    public LabHostBuilder WithIommuPageSizes(params ulong[] sizes)
    {
        ulong bitmap = 0;
        foreach (ulong s in sizes)
        {
            if (!BitOperations.IsPow2(s))
            {
                throw new LabConfigurationException($"IOMMU page size 0x{s:x} is not a power of two") { Subject = "host", Setting = "iommu_page_sizes" };
            }
            bitmap |= s;
        }
        if (bitmap == 0)
        {
            throw new LabConfigurationException("an IOMMU needs at least one page size") { Subject = "host", Setting = "iommu_page_sizes" };
        }
        _pageSizes = bitmap;
        return this;
    }

    /// <summary>Overrides the IOMMU's aperture, the IOVA range it can translate (<paramref name="last"/> inclusive).</summary>
    public LabHostBuilder WithAperture(ulong start, ulong last)
    {
        _aperture = CheckedRange(start, last, "aperture", "aperture");
        return this;
    }

    /// <summary>Adds a reserved IOVA range to every IOMMU unit of the host (<paramref name="last"/> inclusive).</summary>
    public LabHostBuilder AddReservedRegion(ulong start, ulong last, ReservedRegionKind kind)
    {
        _reserved.Add(new ReservedRegion(CheckedRange(start, last, "reserved region", $"reserved_regions[{_reserved.Count}]"), kind switch
        {
            ReservedRegionKind.Msi => ReservedRegionType.Msi,
            ReservedRegionKind.Direct => ReservedRegionType.Direct,
            ReservedRegionKind.DirectRelaxable => ReservedRegionType.DirectRelaxable,
            ReservedRegionKind.SwMsi => ReservedRegionType.SwMsi,
            _ => ReservedRegionType.Reserved,
        }));
        return this;
    }

    /// <summary>The kernel profile (<see cref="KernelProfiles"/>; default <see cref="KernelProfiles.Seeds"/>).</summary>
    public LabHostBuilder WithKernel(string profile)
    {
        if (!KernelProfiles.All.Contains(profile, StringComparer.Ordinal))
        {
            throw new LabConfigurationException($"unknown kernel profile '{profile}' (known: {string.Join(", ", KernelProfiles.All)})");
        }
        _profile = profile;
        return this;
    }

    /// <summary>Switches on a historical behaviour by name (<see cref="KernelQuirks"/>).</summary>
    public LabHostBuilder WithQuirk(string name)
    {
        if (!KernelQuirks.IsKnown(name))
        {
            throw new LabConfigurationException($"unknown quirk '{name}' (known: {string.Join(", ", KernelQuirks.All)})");
        }
        if (!_quirks.Contains(name, StringComparer.Ordinal))
        {
            _quirks.Add(name);
        }
        return this;
    }

    /// <summary>Sets a module parameter by its Linux name: <c>dma_entry_limit</c> (vfio_iommu_type1, default 65535),
    /// <c>disable_hugepages</c>, <c>allow_unsafe_interrupts</c> (0 or 1) and <c>strict_mmio_maps</c> (the seeds'
    /// parameter, default 1).</summary>
    public LabHostBuilder WithParameter(string name, ulong value)
    {
        switch (name)
        {
            case "dma_entry_limit":
                if (value > uint.MaxValue)
                {
                    throw new LabConfigurationException($"dma_entry_limit 0x{value:x} does not fit the module parameter's 32 bits");
                }
                _dmaEntryLimit = (uint)value;
                break;
            case "disable_hugepages":
                _disableHugepages = Flag(name, value);
                break;
            case "allow_unsafe_interrupts":
                _allowUnsafeInterrupts = Flag(name, value);
                break;
            case "strict_mmio_maps":
                _strictMmioMaps = Flag(name, value);
                break;
            default:
                throw new LabConfigurationException(
                    $"unknown module parameter '{name}' (known: dma_entry_limit, disable_hugepages, allow_unsafe_interrupts, strict_mmio_maps)");
        }
        return this;
    }

    /// <summary>Adds a PCI function named <paramref name="name"/> at <paramref name="address"/> (<c>0000:01:00.0</c>).</summary>
    public LabHostBuilder AddPciDevice(string name, string address, Action<PciDeviceOptions>? configure = null)
    {
        if (!PciAddress.TryParse(address, out PciAddress parsed))
        {
            throw new LabConfigurationException($"device '{name}': '{address}' is not a PCI address (0000:01:00.0)");
        }
        var options = new PciDeviceOptions();
        configure?.Invoke(options);
        _devices.Add(new DeviceEntry(name, parsed, Guid.Empty, options, false));
        return this;
    }

    /// <summary>Adds a mediated device (a vGPU-like device that pins guest pages through the VFIO core) in an
    /// emulated IOMMU group of its own; a <paramref name="misbehaving"/> vendor driver ignores unmap notifications.</summary>
    public LabHostBuilder AddMdevDevice(string name, Guid uuid, int? group = null, bool misbehaving = false)
    {
        var options = new PciDeviceOptions();
        if (group is { } g)
        {
            options.Group(g);
        }
        _devices.Add(new DeviceEntry(name, default, uuid, options, misbehaving, IsMdev: true));
        return this;
    }

    /// <summary>Adds a process that will use VFIO, with its RLIMIT_MEMLOCK (<see cref="Unlimited"/> for none) and
    /// whether it has CAP_IPC_LOCK. A host built with no process gets one named <c>main</c> with the default limit.</summary>
    public LabHostBuilder AddProcess(string name, ulong memlockBytes = DefaultMemlockBytes, bool capIpcLock = false)
    {
        if (_processes.Any(p => p.Name == name))
        {
            throw new LabConfigurationException($"process name '{name}' is used twice");
        }
        _processes.Add((name, memlockBytes, capIpcLock));
        return this;
    }

    /// <summary>Checks the whole description against the limits of the hardware it models and the budget on
    /// simulated state (<see cref="LabLimits"/>), building nothing: host memory and its frame layout, IOMMU page
    /// sizes and aperture, each BAR (PCI rules and its place in the MMIO window above RAM), group membership (one
    /// IOMMU and one MSI isolation per group, an mdev alone in its group) and mdev UUIDs. <see cref="Build"/> runs it
    /// first.</summary>
    /// <exception cref="LabConfigurationException">The first rule the description breaks;
    /// <see cref="LabConfigurationException.Subject"/> names the device, process or <c>host</c> and
    /// <see cref="LabConfigurationException.Setting"/> the setting.</exception>
    public void Validate() => LabHostValidator.Validate(this);

    /// <summary>Builds the host. Nothing is shared between two hosts built from one builder.</summary>
    /// <exception cref="LabConfigurationException">The description cannot be built (<see cref="Validate"/>);
    /// <see cref="LabConfigurationException.Subject"/> names the device, process or <c>host</c> it concerns.</exception>
    public LabHost Build()
    {
        Validate();
        int pageShift = BitOperations.Log2(_pageSize);
        IommuHardwareProfile profile = Profile(_iommu, _pageSizes, _aperture, null);
        var kernel = new KernelSettings(_profile, [.. _quirks], _dmaEntryLimit, _disableHugepages, _allowUnsafeInterrupts, _strictMmioMaps);
        var host = new SimulatedHost(_memory, pageShift, _frames, profile, kernel);
        if (_iommu == IommuKind.SpaprTce)
        {
            host.RegisterSpapr();
        }
        else
        {
            host.RegisterType1();
        }

        HashSet<int> explicitGroups = [.. _devices.Where(d => d.Options.GroupNumber is not null).Select(d => d.Options.GroupNumber!.Value)];
        int nextGroup = 0;
        var perDevice = new Dictionary<string, IommuHardwareProfile>(StringComparer.Ordinal);
        foreach (DeviceEntry d in _devices)
        {
            int group = d.Options.GroupNumber ?? NextFreeGroup(host, explicitGroups, ref nextGroup);
            string? error;
            if (d.IsMdev)
            {
                error = host.AddMdevDevice(d.Name, d.Uuid, new MdevVendorDriver(d.Misbehaving, pageShift), group);
            }
            else
            {
                IommuHardwareProfile deviceProfile = profile;
                PciDeviceOptions o = d.Options;
                if (IommuKeyOf(o) is { } key)
                {
                    // Devices with the same per-device settings share one IOMMU instance.
                    if (!perDevice.TryGetValue(key, out IommuHardwareProfile? p))
                    {
                        ulong? bitmap = o.IommuPageSizes is { } sizes ? sizes.Aggregate(0UL, (acc, s) => acc | s)
                            : o.IommuOverride is null ? _pageSizes : null;
                        p = Profile(o.IommuOverride ?? _iommu, bitmap, o.IommuOverride is null ? _aperture : null, o.Coherent ? null : false);
                        perDevice.Add(key, p);
                    }
                    deviceProfile = p;
                }
                var bars = o.Bars.Select(b => new PciBarRequest(b.Index, b.Size, b.Prefetchable, b.Is64Bit)).ToList();
                error = host.AddPciDevice(d.Name, d.Address, bars, o.HostDriver ? DriverBinding.Host : DriverBinding.Vfio, group,
                    deviceProfile, o.IsolatedMsi ? null : false, o.Description);
            }
            if (error is not null)
            {
                throw new LabConfigurationException(error) { Subject = d.Name };
            }
        }
        host.Seal();
        var lab = new LabHost(host);
        foreach ((string name, ulong memlock, bool cap) in _processes)
        {
            lab.Spawn(name, memlock, cap);
        }
        if (_processes.Count == 0)
        {
            lab.Spawn("main", DefaultMemlockBytes, false);
        }
        return lab;
    }

    private IommuHardwareProfile Profile(IommuKind kind, ulong? bitmap, ByteRange? aperture, bool? coherent)
    {
        IommuHardwareProfile baseProfile = kind switch
        {
            IommuKind.AmdVi => IommuHardwareProfile.AmdVi,
            IommuKind.SmmuV3 => IommuHardwareProfile.SmmuV3,
            IommuKind.SpaprTce => IommuHardwareProfile.SpaprTce,
            _ => IommuHardwareProfile.VtD,
        };
        return baseProfile.WithOverrides(bitmap, aperture, _reserved, null, coherent);
    }

    private static int NextFreeGroup(SimulatedHost host, HashSet<int> explicitGroups, ref int next)
    {
        while (explicitGroups.Contains(next) || host.IommuGroups.ContainsKey(next))
        {
            next++;
        }
        return next;
    }

    private static ByteRange CheckedRange(ulong start, ulong last, string what, string setting) => last >= start
        ? new ByteRange(start, last)
        : throw new LabConfigurationException($"{what} [0x{start:x}, 0x{last:x}] ends before it starts") { Subject = "host", Setting = setting };

    private static bool Flag(string name, ulong value) => value switch
    {
        0 => false,
        1 => true,
        _ => throw new LabConfigurationException($"{name} is 0 or 1, not 0x{value:x}"),
    };

    internal ulong Memory => _memory;

    internal ulong PageSize => _pageSize;

    internal FrameLayout Frames => _frames;

    internal ulong? IommuPageSizeBitmap => _pageSizes;

    internal ByteRange? Aperture => _aperture;

    internal IReadOnlyList<DeviceEntry> Devices => _devices;

    internal bool IsSpapr => _iommu == IommuKind.SpaprTce;

    /// <summary>The page sizes of the IOMMU unit a PCI function sits behind, as <see cref="Build"/> sets them up.</summary>
    internal ulong UnitPageSizesOf(PciDeviceOptions o) =>
        IommuKeyOf(o) is null ? Profile(_iommu, _pageSizes, _aperture, null).PgsizeBitmap
        : Profile(o.IommuOverride ?? _iommu, o.IommuPageSizes is { } sizes ? sizes.Aggregate(0UL, (acc, s) => acc | s) : o.IommuOverride is null ? _pageSizes : null,
            null, null).PgsizeBitmap;

    /// <summary>Which IOMMU unit a PCI function sits behind: null for the host's, else a key that devices with the
    /// same per-device settings share (one instance per key).</summary>
    internal static string? IommuKeyOf(PciDeviceOptions o) =>
        o.IommuOverride is not null || o.IommuPageSizes is not null || !o.Coherent
            ? $"{o.IommuOverride}/{string.Join(",", o.IommuPageSizes ?? [])}/{o.Coherent}"
            : null;

    internal sealed record DeviceEntry(string Name, PciAddress Address, Guid Uuid, PciDeviceOptions Options, bool Misbehaving, bool IsMdev = false);
}
