using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// Where the pfn of a VM_PFNMAP address comes from when GUP refuses it (the PFNMAP branch of <c>vaddr_get_pfns</c>),
/// by profile: upstream's page-table walk (v6.12+ <c>follow_pfnmap_start</c>, v6.15 block batching), the seeds
/// profile's device lookup (the VMA's vfio device translates it, and the mapping holds the device through
/// <see cref="DeviceMemoryHolds"/>), or quirk <c>pfnmap-vm-pgoff-translation</c>'s <c>vm_pgoff</c> sum.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_lookups</c> and the holds; the
/// <c>*Locked</c> members assert it. Each lookup takes the address space's mmap lock for read inside it. Never
/// changes: <c>_holds</c>.
/// </remarks>
internal sealed class PfnmapTranslation(Type1Context ctx, DeviceMemoryHolds holds)
{
    private ulong _lookups;

    /// <summary>Translations of PFNMAP addresses made so far (device operations, page-table walks or vm_pgoff
    /// sums): each yields a whole VMA remainder or page-table block, so a BAR costs one or a few.</summary>
    public ulong LookupsLocked
    {
        get
        {
            ctx.AssertLocked();
            return _lookups;
        }
    }

    /// <summary>Whether <paramref name="vaddr"/> lies in a VM_PFNMAP or VM_IO VMA of <paramref name="mm"/> (takes the
    /// mmap lock for read).</summary>
    public static bool IsPfnmap(AddressSpace mm, HostVirtAddr vaddr)
    {
        mm.MmapReadLock();
        try
        {
            return mm.FindVmaLocked(vaddr) is { IsPfnMapOrIo: true };
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    /// <summary>
    /// vaddr_get_pfns' PFNMAP branch, by profile: the pfn at <paramref name="vaddr"/> and how many consecutive pfns
    /// follow it (at most <paramref name="npage"/>). Seeds (the RFC): the VMA's vfio device translates it (whole VMA
    /// remainder, no page walk, whatever the CPU page table holds) and <paramref name="dma"/> takes a reference on the
    /// device and registers for its release; a PFNMAP of no vfio device is refused with ENODEV under
    /// <c>strict_mmio_maps</c>, else walked untracked. Upstream: the page-table walk. EFAULT: a write through a
    /// read-only VMA, a released device's VMA, and the walk's own refusals; EINVAL: a device VMA that maps no device
    /// memory.
    /// </summary>
    public Errno TranslateLocked(VfioDma dma, AddressSpace mm, HostVirtAddr vaddr, ulong npage, bool write, out Pfn pfn, out ulong count)
    {
        ctx.AssertLocked();
        _lookups++;
        if (!ctx.Behavior.DeviceMemoryNotifier)
        {
            return Walk(mm, vaddr, npage, write, out pfn, out count);
        }
        pfn = default;
        count = 0;
        VfioDevice? device;
        bool walk = false;
        mm.MmapReadLock();
        try
        {
            Vma? vma = mm.FindVmaLocked(vaddr);
            if (vma is null || !vma.IsPfnMapOrIo)
            {
                return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn", "no VM_PFNMAP VMA maps vaddr 0x{0:x} any more", vaddr.Value);
            }
            // vfio_device_get_from_vma: the VMA's file is a vfio device file (Jason Gunthorpe's suggestion).
            device = (vma.File?.Operations as VfioDeviceFile)?.Device;
            if (device is null)
            {
                if (ctx.Behavior.StrictMmioMaps)
                {
                    return Refusals.Refuse(Errno.ENODEV, "vaddr_get_pfn", "vaddr 0x{0:x} is a VM_PFNMAP VMA [0x{1:x}, 0x{2:x}] of no vfio device, and strict_mmio_maps is on",
                        vaddr.Value, vma.Start.Value, vma.Last.Value, source: "seeds (2021 RFC, strict_mmio_maps)");
                }
                // Not strict: as the RFC, the mapping proceeds untracked through the ordinary walk.
                walk = true;
            }
            else if (write && !vma.IsWritable)
            {
                return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn", "the device may write, but the BAR mmap [0x{0:x}, 0x{1:x}] of {4} is read-only",
                    vma.Start.Value, vma.Last.Value, text: device.Name);
            }
            else if (device.OpenCount == 0 || device.Removed)
            {
                // A VMA left behind by a forced release: an access through it would fault (SIGBUS).
                return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn", "the BAR mmap [0x{0:x}, 0x{1:x}] belongs to {4}, which was released", vma.Start.Value,
                    vma.Last.Value, text: device.Name, source: "seeds (2021 RFC: vma-to-pfn through the device)");
            }
            else if (device.Driver is not IVfioDeviceMemory memory || !memory.TryVmaToPfn(device, vma, out Pfn first))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_device_vma_to_pfn", "{4} cannot translate its mmap [0x{0:x}, 0x{1:x}] to BAR pfns", vma.Start.Value,
                    vma.Last.Value, text: device.Name, source: "seeds (2021 RFC: vma-to-pfn through the device)");
            }
            else
            {
                ulong page = vaddr.Value >> ctx.PageShift;
                pfn = first.Plus(page - vma.StartPage);
                count = Math.Min(npage, vma.LastPage - page + 1);
            }
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        if (walk)
        {
            return Walk(mm, vaddr, npage, write, out pfn, out count);
        }
        holds.HoldLocked(dma, device!);
        return Errno.None;
    }

    /// <summary>
    /// Upstream's PFNMAP branch (v6.12+ follow_pfnmap_start, v6.15 block batching): the pfn mapped at
    /// <paramref name="address"/> of a VM_PFNMAP VMA, faulting it in first if needed, and how many pfns of the same
    /// page-table block follow. EFAULT: no PFNMAP VMA, a write through a read-only entry, or an ordinary refcounted
    /// page (type1 has no MMU notifier, so it refuses those). Takes the mmap lock for read.
    /// </summary>
    private Errno Walk(AddressSpace mm, HostVirtAddr address, ulong npage, bool write, out Pfn pfn, out ulong count)
    {
        pfn = default;
        count = 0;
        mm.MmapReadLock();
        try
        {
            for (int attempt = 0; attempt < 2; attempt++)
            {
                Vma? vma = mm.FindVmaLocked(address);
                if (vma is null || !vma.IsPfnMapOrIo)
                {
                    return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn", "no VM_PFNMAP VMA maps vaddr 0x{0:x}", address.Value);
                }
                if (ctx.Behavior.PfnmapVmPgoffTranslation)
                {
                    return VmPgoffPfnLocked(mm, vma, address, npage, out pfn, out count);
                }
                if (mm.TryFollowPfnmapLocked(vma, address, out PfnmapEntry entry))
                {
                    if (write && !entry.Writable)
                    {
                        return Refusals.Refuse(Errno.EFAULT, "follow_fault_pfn", "the device may write, but the PFNMAP entry at vaddr 0x{0:x} is read-only", address.Value);
                    }
                    if (!entry.ReservedOrInvalid)
                    {
                        return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn",
                            "vaddr 0x{0:x} maps pfn 0x{1:x}, an ordinary refcounted page in a VM_PFNMAP VMA (type1 has no MMU notifier, so it refuses those)",
                            address.Value, entry.Pfn.Value);
                    }
                    pfn = entry.Pfn;
                    count = Math.Min(npage, Math.Max(entry.BlockPages, 1));
                    return Errno.None;
                }
                Errno fault = mm.FixupUserFaultLocked(address, write);
                if (fault != Errno.None)
                {
                    return fault;
                }
            }
            return Refusals.Refuse(Errno.EFAULT, "follow_fault_pfn", "vaddr 0x{0:x} is still not present after faulting it in", address.Value);
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    /// <summary>
    /// The PFNMAP translation before 5cbf3264bc71 (v5.7, seed 001), under <paramref name="mm"/>'s mmap lock:
    /// <c>vm_pgoff</c> plus the page offset, with no page-table walk, no fault-in and no protection check, accepted
    /// only when the pfn is reserved or has no struct page (EFAULT, GUP's error, otherwise). Right for
    /// remap_pfn_range VMAs only. Pfns past RAM have no struct page, so such a run is taken to the VMA's end at once.
    /// </summary>
    private Errno VmPgoffPfnLocked(AddressSpace mm, Vma vma, HostVirtAddr address, ulong npage, out Pfn pfn, out ulong count)
    {
        mm.AssertMmapLocked();
        pfn = new Pfn(vma.PgoffOf(address));
        count = 0;
        if (!ctx.Machine.Memory.IsReservedOrInvalid(pfn))
        {
            return Refusals.Refuse(Errno.EFAULT, "vaddr_get_pfn", "vm_pgoff gives pfn 0x{0:x} for vaddr 0x{1:x}, an ordinary page", pfn.Value, address.Value,
                source: "quirk pfnmap-vm-pgoff-translation (before 5cbf3264bc71, v5.7)");
        }
        ulong left = vma.LastPage - (address.Value >> ctx.PageShift) + 1;
        count = pfn.Value >= ctx.Machine.Memory.FrameCount ? Math.Min(npage, left) : 1;
        return Errno.None;
    }
}
