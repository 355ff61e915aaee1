using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

/// <summary>
/// vfio-pci's per-device state (struct vfio_pci_core_device): the PCI function, the device's own
/// address space through which every mmap of it is found and zapped (the per-device inode of
/// b7c5e64fecfa), and <c>memory_lock</c>.
/// </summary>
/// <remarks>
/// Lock: <see cref="MemoryLock"/> (memory_lock rwsem): CPU faults on BAR mmaps take it for read;
/// memory disable and resets take it for write and zap every BAR mmap while holding it. It is taken
/// after an mmap lock (the fault path) and never while holding a container or group lock.
/// </remarks>
internal sealed class VfioPciDevice(PciFunction function, int pageShift, VfioPciBehavior? behavior = null)
{
    /// <summary>Region offsets encode the index above bit 40 (VFIO_PCI_OFFSET_SHIFT).</summary>
    public const int OffsetShift = 40;

    /// <summary>The function behind the device.</summary>
    public PciFunction Function { get; } = function;

    /// <summary>The device's address space: every VMA that mmaps the device.</summary>
    public MappingSpace Mapping { get; } = new();

    /// <summary>memory_lock.</summary>
    public OrderedReaderWriterLock MemoryLock { get; } = new(LockRank.MemoryLock, LockRecursionPolicy.SupportsRecursion);

    /// <summary>The driver's version switches.</summary>
    public VfioPciBehavior Behavior { get; } = behavior ?? VfioPciBehavior.Default;

    /// <summary>Host PAGE_SHIFT.</summary>
    public int PageShift { get; } = pageShift;

    /// <summary>Whether <c>pci_try_reset_function</c> worked at the last open (vdev->reset_works): the function
    /// has a reset method the PCI core can use. Set by the driver when the device is opened.</summary>
    public bool ResetWorks { get; set; } = function.Description.Reset != PciResetMethod.None;

    /// <summary>The interrupt state (igate).</summary>
    public VfioPciIrqs Irqs { get; } = new(function);

    /// <summary>The virtualized config space, built at open (vfio_config_init) and dropped at close.</summary>
    public VfioPciConfig? Config { get; set; }

    /// <summary>Runtime low power entered through VFIO_DEVICE_FEATURE (pm_runtime_engaged), or null; under memory_lock.</summary>
    public VfioPciLowPower? LowPower { get; set; }

    /// <summary>The BAR holding the MSI-X table (vdev->msix_bar), or -1.</summary>
    public int MsixBar => Function.Description.MsixVectors > 0 ? Function.Description.MsixBar : -1;

    /// <summary>The region index of a device-fd offset.</summary>
    public static ulong IndexOf(ulong offset) => offset >> OffsetShift;

    /// <summary>The offset within its region of a device-fd offset.</summary>
    public static ulong OffsetWithin(ulong offset) => offset & ((1UL << OffsetShift) - 1);

    /// <summary>Whether BAR <paramref name="index"/> can be mmapped (vdev->bar_mmap_supported): a
    /// memory BAR of non-zero size starting on a host page boundary.</summary>
    public bool BarMmapSupported(int index) =>
        Function.Bar(index) is { Size: > 0 } bar && (bar.Base.Value & ((1UL << PageShift) - 1)) == 0;

    /// <summary>Zaps every CPU mapping of the device's BARs (vfio_pci_zap_bars), with
    /// <see cref="MemoryLock"/> held for write.</summary>
    public void ZapBarsLocked()
    {
        System.Diagnostics.Debug.Assert(MemoryLock.IsWriteLockHeld);
        ulong first = 0;
        ulong pages = (ulong)Abi.VfioPciRegionIndex.Rom << (OffsetShift - PageShift); // BAR0..BAR5, as vfio_pci_zap_bars
        Mapping.UnmapMappingRange(first, pages);
    }

    private int _barMap;

    /// <summary>vdev->barmap as a bit per BAR: the BARs requested and ioremapped by their first mmap or
    /// pread/pwrite (vfio_pci_core_setup_barmap), kept until close_device.</summary>
    public int BarMap => Volatile.Read(ref _barMap);

    /// <summary>vfio_pci_core_setup_barmap: nothing to do for a BAR already mapped; else pci_iomap, which
    /// fails with ENOMEM (fault site <c>pci_iomap</c>) and leaves the BAR unmapped.</summary>
    public Abi.Errno SetupBarMap(int index, FaultInjector faults)
    {
        if ((BarMap & (1 << index)) != 0)
        {
            return Abi.Errno.None;
        }
        if (faults.ShouldFail(FaultSite.PciIomap))
        {
            return Refusals.Refuse(Abi.Errno.ENOMEM, "pci_iomap", "mapping a BAR failed (injected)");
        }
        Interlocked.Or(ref _barMap, 1 << index);
        return Abi.Errno.None;
    }

    /// <summary>close_device's pci_iounmap and release of every mapped BAR.</summary>
    public void ReleaseBarMaps() => Interlocked.Exchange(ref _barMap, 0);

    /// <summary>Whether the host revoked the device's CPU mappings (a forced release): faults answer SIGBUS.</summary>
    public bool Revoked { get; private set; }

    /// <summary>Zaps every BAR mmap and makes later faults SIGBUS, under memory_lock for write.</summary>
    public void Revoke()
    {
        MemoryLock.EnterWriteLock();
        try
        {
            Revoked = true;
            ZapBarsLocked();
        }
        finally
        {
            MemoryLock.ExitWriteLock();
        }
    }

    /// <summary>A new open after a forced release: faults may insert pfns again.</summary>
    public void ClearRevocation()
    {
        MemoryLock.EnterWriteLock();
        try
        {
            Revoked = false;
        }
        finally
        {
            MemoryLock.ExitWriteLock();
        }
    }
}
