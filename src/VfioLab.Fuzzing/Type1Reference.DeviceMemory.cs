using VfioLab.Abi;

namespace VfioLab.Fuzzing;

// Device memory in the reference: the GPU's BAR0 mmapped by the VMM, MAP_DMA of it (never pinned nor charged,
// a DMA slot taken, translated to the BAR's physical address), its memory decode, its release and what each
// kernel profile does with the mappings then (spec type1.md §3.2; seed 003 for the seeds profile).
internal sealed partial class Type1Reference
{
    /// <summary>Size of the GPU's BAR0.</summary>
    public const ulong BarSize = 0x10_0000;

    /// <summary>The seeds profile (the 2021 device-memory RFC: device lookup, reference and release notifier);
    /// false is upstream v6.18 (the page-table walk, nothing held).</summary>
    public bool DeviceNotifier { get; init; }

    /// <summary>The VMM's pid: the only process whose BAR mmap the rig uses.</summary>
    public int BarProcess { get; init; }

    /// <summary>The BAR's first frame.</summary>
    public ulong BarPfn { get; init; }

    /// <summary>Where the VMM's mmap of the BAR lies (its latest one), or null before the device is first opened.</summary>
    public ulong? BarVaddr { get; private set; }

    /// <summary>The GPU's device is open (its fd held by the VMM).</summary>
    public bool DeviceOpen { get; private set; }

    /// <summary>The BAR decodes memory (PCI_COMMAND_MEMORY): set at open, kept across resets and release.</summary>
    public bool Decode { get; private set; }

    /// <summary>Seeds: releases whose notifier ran and whose unregistration waits for deferred work (one per
    /// release that found the container holding the device).</summary>
    public int ReleasesPending { get; private set; }

    /// <summary>Seeds: the IOVAs of the mappings that reached the BAR through the device (the device is held for them).</summary>
    public IEnumerable<ulong> DeviceHolders => Mappings.Values.Where(m => m.HoldsDevice).Select(m => m.Iova);

    /// <summary>The device was opened and its BAR mmapped at <paramref name="vaddr"/> (open turns decode on).</summary>
    public void BarOpened(ulong vaddr)
    {
        BarVaddr = vaddr;
        DeviceOpen = true;
        Decode = true;
    }

    /// <summary>Memory decode turned on or off through config space.</summary>
    public void SetDecode(bool on) => Decode = on;

    /// <summary>Every file of the device closed. Seeds: the release notifier removes, at once, every mapping
    /// that reached the device, and queues its own unregistration. Upstream: nothing changes in type1; the
    /// translations into the BAR stay (the known stale translation).</summary>
    public void DeviceReleased()
    {
        DeviceOpen = false;
        if (!DeviceNotifier)
        {
            return;
        }
        List<Mapping> holders = [.. Mappings.Values.Where(m => m.HoldsDevice)];
        if (holders.Count > 0)
        {
            ReleasesPending++;
        }
        foreach (Mapping m in holders)
        {
            Remove(m);
        }
    }

    /// <summary>run_deferred_work: how many work items run (the pending unregistrations, seeds only).</summary>
    public int RunDeferredWork()
    {
        int ran = ReleasesPending;
        ReleasesPending = 0;
        return ran;
    }

    // What lies at vaddr in pid's address space: the BAR in the VMM's latest mmap of it, else the rig's layout.
    private DifferentialRig.MemoryKind Kind(int pid, ulong vaddr) =>
        pid == BarProcess && BarVaddr is ulong bar && vaddr >= bar && vaddr - bar < BarSize
            ? DifferentialRig.MemoryKind.Bar
            : DifferentialRig.KindOf(vaddr);

    /// <summary>Seeds' <c>strict_mmio_maps</c>: a PFNMAP that is no vfio device's mmap is refused (ENODEV).</summary>
    public bool StrictMmioMaps { get; init; }

    // Why GUP (or, for PFNMAP, the walk or the device) yields no frame for vaddr in pid's mm, or None. The BAR:
    // seeds asks the device, which answers while it is open whatever the page table holds; upstream walks the
    // page table and faults it in, which vfio-pci refuses (SIGBUS) while decode is off or after the release.
    // Another driver's MMIO: seeds' device lookup finds no vfio device, which strict_mmio_maps refuses.
    private Errno PinError(int pid, ulong vaddr, bool write) => Kind(pid, vaddr) switch
    {
        DifferentialRig.MemoryKind.Hole => Errno.EFAULT,
        DifferentialRig.MemoryKind.ReadOnly => write ? Errno.EFAULT : Errno.None,
        DifferentialRig.MemoryKind.Bar => DeviceOpen && (DeviceNotifier || Decode) ? Errno.None : Errno.EFAULT,
        DifferentialRig.MemoryKind.Pfnmap => DeviceNotifier && StrictMmioMaps ? Errno.ENODEV : Errno.None,
        _ => Errno.None,
    };

    // A CPU access of the owner's memory (vfio_dma_rw's copy): a hole faults, so does a write to read-only
    // memory, and the BAR while it does not decode or after its release.
    private bool CpuAccessFaults(int pid, ulong vaddr, bool write) => Kind(pid, vaddr) switch
    {
        DifferentialRig.MemoryKind.Hole => true,
        DifferentialRig.MemoryKind.ReadOnly => write,
        DifferentialRig.MemoryKind.Bar => !DeviceOpen || !Decode,
        _ => false,
    };

    private bool IsReservedKind(int pid, ulong vaddr) => Kind(pid, vaddr) is DifferentialRig.MemoryKind.Pfnmap or DifferentialRig.MemoryKind.Bar;

    // The frame behind vaddr: the BAR's by arithmetic, anything else from the page table after the real call.
    private ulong FrameAt(int pid, ulong vaddr) =>
        Kind(pid, vaddr) == DifferentialRig.MemoryKind.Bar ? BarPfn + ((vaddr - BarVaddr!.Value) / Page) : pfnOf(pid, vaddr);

    // Seeds: a mapping pinned with a BAR page went through the device, which it now holds.
    private void NoteDeviceHold(Mapping m, int pid)
    {
        if (!DeviceNotifier)
        {
            return;
        }
        for (ulong i = 0; i < m.Size / Page; i++)
        {
            if (Kind(pid, m.Vaddr + (i * Page)) == DifferentialRig.MemoryKind.Bar)
            {
                m.HoldsDevice = true;
                return;
            }
        }
    }

    /// <summary>Whether a DMA of 8 bytes at <paramref name="iova"/> (within one page) by a device of
    /// <paramref name="group"/> completes: the group is attached, a mapping covers it with the permission, and
    /// the frame it translates to is RAM, or the GPU's BAR while it decodes memory (peer to peer; stale
    /// translations included); another driver's MMIO that is no BAR answers unsupported request.</summary>
    public bool DmaCompletes(int group, ulong iova, bool write)
    {
        if (!Groups.Contains(group))
        {
            return false;
        }
        foreach (Mapping m in Mappings.Values)
        {
            if (iova >= m.Iova && iova + 7 <= m.Last)
            {
                ulong page = (iova - m.Iova) / Page;
                return (write ? m.Write : m.Read) && (!m.Reserved[page] || (IsBarFrame(m.Pfns[page]) && Decode));
            }
        }
        return false;
    }

    /// <summary>Whether a frame is the BAR's.</summary>
    public bool IsBarFrame(ulong pfn) => pfn >= BarPfn && pfn - BarPfn < BarSize / Page;
}
