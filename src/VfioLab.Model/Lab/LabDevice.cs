using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Lab;

/// <summary>
/// One device of a <see cref="LabHost"/>, as the hardware and the host see it: a PCI function (or a mediated device)
/// that issues DMA through its IOMMU group, that the host can release from VFIO or unplug, and, for a device that pins
/// pages through the VFIO core (an mdev vendor driver), the kernel-internal calls <c>vfio_pin_pages</c>,
/// <c>vfio_unpin_pages</c> and <c>vfio_dma_rw</c>. Their failures are errno, as the kernel returns them.
/// </summary>
public sealed class LabDevice
{
    private readonly LabHost _host;

    internal LabDevice(LabHost host, SimulatedDevice device)
    {
        _host = host;
        Simulated = device;
    }

    /// <summary>The device's name in the host description.</summary>
    public string Name => Simulated.Name;

    /// <summary>The device's own name: its PCI address (<c>0000:01:00.0</c>) or its mdev UUID.</summary>
    public string Address => Simulated.DeviceName;

    /// <summary>The IOMMU group number (<c>/dev/vfio/N</c>).</summary>
    public int IommuGroup => Simulated.Group.Id;

    /// <summary>Whether the device is a mediated device (its group is emulated; it pins pages through the VFIO core).</summary>
    public bool IsMediated => Simulated.Function is null;

    /// <summary>Whether the device is bound to VFIO (vfio-pci or an mdev vendor driver), not to a host driver.</summary>
    public bool IsVfioBound => Simulated.Vfio is not null;

    /// <summary>Whether the device is still present (not unplugged).</summary>
    public bool IsPresent => Simulated.Group.FindMember(Simulated.DeviceName) is not null;

    /// <summary>The PCI vendor id the device reports (config space, sysfs <c>vendor</c>); null for a mediated device.</summary>
    public ushort? VendorId => Simulated.Function?.VendorId;

    /// <summary>The PCI device id the device reports (config space, sysfs <c>device</c>); null for a mediated device.</summary>
    public ushort? DeviceId => Simulated.Function?.DeviceId;

    /// <summary>The 24-bit PCI class code (base class, subclass, programming interface; sysfs <c>class</c>); null for a
    /// mediated device.</summary>
    public uint? ClassCode => Simulated.Function?.Description.ClassCode;

    /// <summary>The IOVA ranges the device's IOMMU group reserves, sorted by start: the IOMMU profile's and the host's
    /// own (what the group's <c>reserved_regions</c> file lists); empty for a mediated device's emulated group.</summary>
    public IReadOnlyList<LabReservedRegion> ReservedRegions =>
        [.. Simulated.Group.ReservedRegions.Select(r => new LabReservedRegion(r.Range.Start, r.Range.Last, r.Type switch
        {
            ReservedRegionType.Msi => ReservedRegionKind.Msi,
            ReservedRegionType.Direct => ReservedRegionKind.Direct,
            ReservedRegionType.DirectRelaxable => ReservedRegionKind.DirectRelaxable,
            ReservedRegionType.SwMsi => ReservedRegionKind.SwMsi,
            _ => ReservedRegionKind.Reserved,
        }))];

    /// <summary>Leaf IOMMU entries that translate for this device now: IOPTEs of its group's domain, or a sPAPR PE's valid TCEs.</summary>
    public ulong IommuEntries => Simulated.Group.TableGroup?.ValidEntries ?? Simulated.Group.Domain?.TotalEntries ?? 0;

    /// <summary>The paging domain the device's group is attached to now, as a snapshot: its IOPTEs by page size and the
    /// page-table memory they need. Null while the group has no domain (no container with a type1 backend), for a
    /// mediated device (an emulated group) and on a sPAPR host (see <see cref="TceWindows"/>).</summary>
    public LabDomain? Domain => Simulated.Group.Domain is { IsFreed: false } d ? LabDomain.Of(d) : null;

    /// <summary>The sPAPR DMA windows programmed into the device's PE now, by slot, as snapshots; empty on other hosts.</summary>
    public IReadOnlyList<LabTceWindow> TceWindows
    {
        get
        {
            if (Simulated.Group.TableGroup is not { } pe)
            {
                return [];
            }
            int pageShift = _host.Simulated.Machine.PageShift;
            return [.. pe.Windows.OfType<Iommu.TceTable>().Select(t => LabTceWindow.Of(t, _host.Ids.Of(t), pageShift))];
        }
    }

    /// <summary>The physical address of memory BAR <paramref name="index"/>, where a peer's DMA reaches it; null for a
    /// mediated device or a BAR the function does not have.</summary>
    public ulong? BarAddress(int index) => Simulated.Function?.Bar(index)?.Base.Value;

    /// <summary>The pins an mdev vendor driver holds through <c>vfio_pin_pages</c>, by its own count (a page pinned
    /// twice counts twice); null for a device whose driver is not an mdev vendor driver.</summary>
    public ulong? PinsHeld => (Simulated.Vfio?.Driver as MdevVendorDriver)?.PinsHeld;

    /// <summary>Resets the PCI function has gone through (function, slot or bus resets); 0 for a mediated device.</summary>
    public int ResetCount => Simulated.Function?.ResetCount ?? 0;

    /// <summary>The device's interrupt set-up through vfio-pci now; null for a mediated device or one bound to a host driver.</summary>
    public LabIrqState? Irqs
    {
        get
        {
            if (Simulated.Vfio?.Hardware is not global::VfioLab.Vfio.Pci.VfioPciDevice pci)
            {
                return null;
            }
            global::VfioLab.Vfio.Pci.VfioPciIrqSnapshot s = pci.Irqs.Snapshot();
            LabIrqIndex? mode = s.Mode switch
            {
                global::VfioLab.Vfio.Pci.VfioPciIrqMode.Intx => LabIrqIndex.Intx,
                global::VfioLab.Vfio.Pci.VfioPciIrqMode.Msi => LabIrqIndex.Msi,
                global::VfioLab.Vfio.Pci.VfioPciIrqMode.Msix => LabIrqIndex.Msix,
                _ => null,
            };
            return new LabIrqState(mode, s.Vectors, s.TriggerVectors, s.IntxMasked, s.IntxUnmaskEventFd, s.ErrTrigger, s.ReqTrigger);
        }
    }

    /// <summary>The device asserts an interrupt: INTx (automasked as vfio-pci does, held pending while masked), MSI or
    /// MSI-X vector <paramref name="vector"/>, an AER error or a release request.</summary>
    /// <returns>Whether a trigger eventfd the user set was signalled.</returns>
    /// <exception cref="LabConfigurationException">The device is not bound to vfio-pci.</exception>
    public bool RaiseInterrupt(LabIrqIndex index, int vector = 0)
    {
        if (Simulated.Vfio?.Hardware is not global::VfioLab.Vfio.Pci.VfioPciDevice pci)
        {
            throw new LabConfigurationException($"device {Name} is not bound to vfio-pci; its interrupts do not reach VFIO") { Subject = Name };
        }
        return pci.Irqs.Raise((VfioPciIrqIndex)(uint)index, vector);
    }

    /// <summary>The device reads <paramref name="size"/> bytes at <paramref name="iova"/> through its IOMMU.</summary>
    /// <exception cref="LabConfigurationException">The device was unplugged, or <paramref name="size"/> exceeds what one array holds.</exception>
    public LabDmaResult DmaRead(ulong iova, ulong size)
    {
        LabHost.Wide(_host);
        EnsurePresent();
        if (size > (ulong)Array.MaxLength)
        {
            throw new LabConfigurationException($"a DMA read of 0x{size:x} bytes is larger than one transfer buffer") { Subject = Name };
        }
        return Result(DeviceDma.Read(_host.Simulated, Simulated, new Iova(iova), size));
    }

    /// <summary>The device writes <paramref name="data"/> at <paramref name="iova"/> through its IOMMU.</summary>
    /// <exception cref="LabConfigurationException">The device was unplugged.</exception>
    public LabDmaResult DmaWrite(ulong iova, ReadOnlySpan<byte> data)
    {
        LabHost.Wide(_host);
        EnsurePresent();
        return Result(DeviceDma.Write(_host.Simulated, Simulated, new Iova(iova), data));
    }

    /// <summary>What the device's IOMMU makes of <paramref name="iova"/> for a read, without moving data.</summary>
    public LabTranslation Translate(ulong iova)
    {
        IommuTranslation t = IommuDma.Translate(Simulated.Group, new Iova(iova), write: false);
        return t.Ok ? new LabTranslation(t.Phys.Value, t.PageSize, null) : new LabTranslation(0, 0, Reason(t.Fault));
    }

    /// <summary>The host takes the device away from its user (a driver unbind request honoured): the device's fds are
    /// closed in every process, its BAR mappings revoked, and its release notifier runs.</summary>
    /// <returns>How many fds were closed.</returns>
    public int Release() => SimulatedHostActions.ReleaseDevice(LabHost.Wide(_host).Simulated, Simulated);

    /// <summary>Hot-unplugs the device: <see cref="Release"/>, then it leaves its group and the PCI bus.</summary>
    /// <returns>How many fds were closed.</returns>
    public int Unplug() => SimulatedHostActions.Unplug(LabHost.Wide(_host).Simulated, Simulated);

    /// <summary><c>vfio_pin_pages</c>: the device's driver pins <paramref name="count"/> pages from <paramref name="iova"/>
    /// and receives their page frame numbers in <paramref name="pfns"/>.</summary>
    /// <returns>The number of pages pinned, or -errno (EINVAL, E2BIG, EFAULT, ENOMEM, ...) exactly as the kernel returns it.</returns>
    /// <exception cref="LabConfigurationException">The device is bound to a host driver, not to VFIO.</exception>
    public long PinPages(ulong iova, int count, bool write, Span<ulong> pfns) =>
        PinPages(iova, count, write ? MemoryProtection.Read | MemoryProtection.Write : MemoryProtection.Read, pfns);

    /// <summary><c>vfio_pin_pages</c> with the access asked for spelled out: <see cref="MemoryProtection.Read"/>,
    /// <see cref="MemoryProtection.Write"/> or both (IOMMU_READ, IOMMU_WRITE; other bits are ignored). The core refuses
    /// (EPERM) an access the mapping does not allow, so a write-only pin of a write-only mapping succeeds where a
    /// read-write pin does not.</summary>
    /// <returns>The number of pages pinned, or -errno exactly as the kernel returns it.</returns>
    /// <exception cref="LabConfigurationException">The device is bound to a host driver, not to VFIO.</exception>
    public long PinPages(ulong iova, int count, MemoryProtection protection, Span<ulong> pfns)
    {
        LabHost.Wide(_host);
        VfioDevice vfio = Vfio();
        // The kernel's array of page pointers, as large as the core accepts (PAGE_SIZE / 8 entries; E2BIG past it).
        var raw = new Pfn[Math.Clamp(count, 1, 8192)];
        IommuProt prot = ((protection & MemoryProtection.Read) != 0 ? IommuProt.Read : IommuProt.None)
            | ((protection & MemoryProtection.Write) != 0 ? IommuProt.Write : IommuProt.None);
        Refusals.Begin();
        long ret = Explained(vfio.Driver is MdevVendorDriver driver
            ? driver.PinPages(vfio, iova, count, prot, raw)
            : vfio.PinPages(iova, count, prot, raw, _host.Simulated.Machine.PageShift));
        for (int i = 0; i < raw.Length && i < pfns.Length && i < ret; i++)
        {
            pfns[i] = raw[i].Value;
        }
        return ret;
    }

    /// <summary><c>vfio_unpin_pages</c>: the driver unpins <paramref name="count"/> pages from <paramref name="iova"/>.</summary>
    /// <returns>False where the kernel would WARN: nothing, or only part, was pinned there.</returns>
    /// <exception cref="LabConfigurationException">The device is bound to a host driver, not to VFIO.</exception>
    public bool UnpinPages(ulong iova, int count)
    {
        LabHost.Wide(_host);
        VfioDevice vfio = Vfio();
        return vfio.Driver is MdevVendorDriver driver
            ? driver.UnpinPages(vfio, iova, count)
            : vfio.UnpinPages(iova, count, _host.Simulated.Machine.PageShift);
    }

    /// <summary><c>vfio_dma_rw</c>: the driver reads or writes guest memory at <paramref name="iova"/> through the container's
    /// mappings, from the context of <paramref name="current"/> (a kernel thread when null).</summary>
    /// <returns><see cref="Errno.None"/>, or the errno the kernel returns.</returns>
    /// <exception cref="LabConfigurationException">The device is bound to a host driver, not to VFIO.</exception>
    public Errno DmaRw(ulong iova, Span<byte> data, bool write, LabProcess? current = null)
    {
        LabHost.Wide(_host);
        VfioDevice vfio = Vfio();
        Refusals.Begin();
        return ErrnoExtensions.FromReturn(Explained(MdevVendorDriver.DmaRw(vfio, iova, data, write, current?.Process).AsReturn()));
    }

    /// <summary>Why the device driver's last <see cref="PinPages(ulong, int, MemoryProtection, Span{ulong})"/> or
    /// <see cref="DmaRw"/> failed: the kernel check that refused, with its values; null when it succeeded or before any.</summary>
    public LabRefusal? LastRefusal => LabRefusal.From(_lastRefusal);

    // A pinning driver's call returns: its refusal, when it failed, becomes the device's and the host's last.
    private long Explained(long ret)
    {
        Refusal refusal = ret < 0 ? Refusals.Take(ErrnoExtensions.FromReturn(ret)) : default;
        _lastRefusal = refusal;
        _host.Simulated.Machine.LastRefusal = refusal;
        return ret;
    }

    /// <inheritdoc/>
    public override string ToString() => Simulated.ToString();

    internal SimulatedDevice Simulated { get; }

    private Refusal _lastRefusal;

    internal static DmaFaultReason Reason(IommuFaultReason reason) => reason switch
    {
        IommuFaultReason.ReadDenied => DmaFaultReason.ReadDenied,
        IommuFaultReason.WriteDenied => DmaFaultReason.WriteDenied,
        IommuFaultReason.NoDomain => DmaFaultReason.NoDomain,
        IommuFaultReason.NoIommu => DmaFaultReason.NoIommu,
        IommuFaultReason.UnsupportedRequest => DmaFaultReason.UnsupportedRequest,
        _ => DmaFaultReason.NotMapped,
    };

    private static LabDmaResult Result(DeviceDmaResult r) =>
        new(r.Bytes, r.Data, r.Fault?.Iova.Value, r.Fault is { } f ? Reason(f.Reason) : null);

    private VfioDevice Vfio() => Simulated.Vfio
        ?? throw new LabConfigurationException($"device {Name} is bound to a host driver, not to VFIO; it cannot call the VFIO core") { Subject = Name };

    private void EnsurePresent()
    {
        if (!IsPresent)
        {
            throw new LabConfigurationException($"device {Name} was unplugged; it issues no DMA") { Subject = Name };
        }
    }
}
