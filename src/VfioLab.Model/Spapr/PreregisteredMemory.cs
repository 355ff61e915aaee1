using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// The memory one sPAPR TCE v2 container pre-registered (<c>container-&gt;prereg_list</c>): VFIO_IOMMU_SPAPR_REGISTER_MEMORY
/// and UNREGISTER_MEMORY (<c>tce_iommu_register_pages</c>, <c>tce_iommu_unregister_pages</c>) over the mm's region list
/// (<c>mm_iommu_new</c>, <c>get</c>, <c>put</c>: <see cref="MmIommuContext"/>), each region pinned and charged once at
/// registration and released by its last put.
/// </summary>
/// <remarks>Lock: the container's lock (<see cref="TceContext.Lock"/>) protects <c>_prereg</c> and a region's
/// <c>mapped</c> count; every <c>*Locked</c> member asserts it. The mm's region list has its own lock, taken after the
/// mmap lock; registration pins under the mm's mmap lock for read.</remarks>
internal sealed class PreregisteredMemory(TceContext ctx, TceContainerMm mm)
{
    private readonly List<MmIommuRegion> _prereg = [];

    /// <summary>The regions this container holds (a copy, for the snapshot).</summary>
    public List<MmIommuRegion> RegionsLocked()
    {
        ctx.AssertLocked();
        return [.. _prereg];
    }

    /// <summary>Release: every region of the list is put (the last put unpins and un-charges it). The kernel WARNs when
    /// a put fails (another container still maps the region); that entry stays.</summary>
    public void ReleaseLocked()
    {
        ctx.AssertLocked();
        foreach (MmIommuRegion r in _prereg.ToArray())
        {
            PreregFreeLocked(r);
        }
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_REGISTER_MEMORY: EPERM (the container belongs to another mm), EFAULT (copy of 24 bytes),
    /// EINVAL (argsz, flags, vaddr or size off PAGE_SIZE, a range that wraps); EBUSY when this container already
    /// holds the region registered at exactly (vaddr, size); a region the mm registered through another
    /// container is shared (one more user, nothing pinned). Otherwise <c>mm_iommu_new</c>: ENOMEM for size 0 (its
    /// <c>vzalloc(0)</c> returns NULL) or when charging the pages passes RLIMIT_MEMLOCK, EFAULT/ENOMEM when a page cannot be pinned for write, EINVAL when the
    /// range overlaps another region of the mm (checked after pinning; everything unwound). Enables the container.
    /// </summary>
    public long RegisterMemoryIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        Errno e = mm.SetLocked(caller);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (!ReadRegisterMemory(ref argument, out ulong vaddr, out ulong size, out e))
        {
            return e.AsReturn();
        }
        return RegisterPagesLocked(caller, vaddr, size);
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: EPERM (no mm recorded yet, or another mm), EFAULT, EINVAL (argsz, flags,
    /// alignment), ENOENT when the mm has no region at exactly (vaddr, size) or this container does not hold it.
    /// The container lets go of the region; the last user releases it (unpin, un-charge). A region TCEs still
    /// point into is not released, but the kernel ignores the EBUSY of that last put: the call returns 0, the
    /// container forgets the region, and it stays pinned and charged in the mm.
    /// </summary>
    public Errno UnregisterMemoryIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        if (mm.WorkingLocked(caller) is null || (!ctx.Behavior.ContainerRecordsMm && caller.Mm is null))
        {
            return Refusals.Refuse(Errno.EPERM, "tce_iommu_unregister_pages", "the container has no mm yet (nothing was registered)");
        }
        if (!ReadRegisterMemory(ref argument, out ulong vaddr, out ulong size, out Errno e))
        {
            return e;
        }
        if (((vaddr | size) & (ctx.Machine.PageSize - 1)) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_unregister_pages", "vaddr 0x{0:x} and size 0x{1:x} must be multiples of PAGE_SIZE 0x{2:x}", vaddr, size,
                ctx.Machine.PageSize);
        }
        MmIommuContext regions = ctx.Mms.Of(mm.WorkingLocked(caller)!);
        MmIommuRegion? mem = regions.Get(vaddr, size >> ctx.PageShift);
        if (mem is null)
        {
            return Refusals.Refuse(Errno.ENOENT, "mm_iommu_get", "no region [0x{0:x}, +0x{1:x}) is registered in this mm", vaddr, size);
        }
        Errno ret = _prereg.Contains(mem)
            ? PreregFreeLocked(mem)
            : Refusals.Refuse(Errno.ENOENT, "tce_iommu_unregister_pages", "the region [0x{0:x}, +0x{1:x}) was not registered through this container", vaddr, size);
        PutRegionLocked(mem);
        ctx.Emit(TraceKind.SpaprUnregister, caller, TraceLog.F("vaddr", vaddr), TraceLog.F("size", size),
            TraceLog.F("errno", ret.ToString()));
        return ret;
    }

    private static bool ReadRegisterMemory(ref IoctlArgument argument, out ulong vaddr, out ulong size, out Errno error)
    {
        vaddr = size = 0;
        Span<byte> raw = stackalloc byte[VfioIommuSpaprRegisterMemory.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            error = Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "copy_from_user of the {0}-byte struct vfio_iommu_spapr_register_memory faulted", (ulong)raw.Length);
            return false;
        }
        VfioIommuSpaprRegisterMemory.TryRead(raw, out VfioIommuSpaprRegisterMemory p);
        if (p.Argsz < VfioIommuSpaprRegisterMemory.MinSize || p.Flags != 0)
        {
            error = Refusals.Refuse(Errno.EINVAL, "tce_iommu_ioctl", "argsz {0} (minsz {1}) or flags 0x{2:x} (none allowed)", p.Argsz,
                (ulong)VfioIommuSpaprRegisterMemory.MinSize, p.Flags);
            return false;
        }
        vaddr = p.Vaddr;
        size = p.Size;
        error = Errno.None;
        return true;
    }

    /// <summary><c>tce_iommu_register_pages</c>: 0, -errno, or (see <see cref="NewRegionLocked"/>) the positive
    /// count of pages GUP pinned before it stopped.</summary>
    private long RegisterPagesLocked(Process caller, ulong vaddr, ulong size)
    {
        ctx.AssertLocked();
        if (((vaddr | size) & (ctx.Machine.PageSize - 1)) != 0 || vaddr + size < vaddr)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_register_pages", "vaddr 0x{0:x} and size 0x{1:x} must be multiples of PAGE_SIZE 0x{2:x} and not wrap",
                vaddr, size, ctx.Machine.PageSize);
        }
        MmIommuContext regions = ctx.Mms.Of(mm.WorkingLocked(caller)!);
        ulong entries = size >> ctx.PageShift;
        MmIommuRegion? mem = regions.Get(vaddr, entries);
        if (mem is not null)
        {
            if (_prereg.Contains(mem))
            {
                PutRegionLocked(mem);
                return Refusals.RefuseReturn(Errno.EBUSY, "tce_iommu_register_pages", "[0x{0:x}, +0x{1:x}) is already registered through this container", vaddr, size);
            }
        }
        else
        {
            long ret = NewRegionLocked(caller, regions, vaddr, entries, out mem);
            if (ret != 0)
            {
                return ret;
            }
        }
        _prereg.Add(mem!);
        ctx.Emit(TraceKind.SpaprRegister, caller, TraceLog.F("vaddr", vaddr), TraceLog.F("size", size),
            TraceLog.F("pageshift", mem!.PageShift));
        return 0;
    }

    /// <summary>
    /// <c>mm_iommu_new</c>: charge the pages, pin them all for write (long-term), then list the region unless it
    /// overlaps one already listed. The region's page shift starts from the natural alignment of ua and size and
    /// is capped by the page size backing each page (hugetlb pages count as their huge size once the cap is above
    /// PAGE_SIZE; the kernel's cap keeps the last huge size it saw when a later page is small). Pinned and
    /// recorded by runs of contiguous frames. When GUP stops part-way (a hole, a read-only page, no memory) the
    /// kernel returns what <c>pin_user_pages</c> returned: the positive count of pages it did pin, not an errno
    /// (EFAULT only when nothing was pinned at all); everything is unwound either way. (The kernel pins in chunks of
    /// 2^(PAGE_SHIFT + MAX_PAGE_ORDER) / 8 pages, millions of pages; the model treats the range as one chunk.)
    /// </summary>
    private long NewRegionLocked(Process caller, MmIommuContext regions, ulong ua, ulong entries, out MmIommuRegion? region)
    {
        ctx.AssertLocked();
        region = null;
        if (entries == 0)
        {
            // mm_iommu_do_alloc: charging 0 pages is a no-op, then vzalloc(array_size(0, 8)) returns NULL: ENOMEM,
            // with nothing charged, pinned or listed.
            return Refusals.RefuseReturn(Errno.ENOMEM, "mm_iommu_do_alloc", "a region of 0 pages: vzalloc of 0 entries returns NULL");
        }
        AddressSpace owner = regions.Mm;
        Errno e = mm.Account(owner, caller, (long)entries);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        long partial = 0;
        var hpas = new RunMap<HpaRun>();
        int pageShift = ctx.PageShift;
        int shift = System.Numerics.BitOperations.TrailingZeroCount(ua | (entries << pageShift));
        ulong pinned = 0;
        Span<PfnRun> runs = stackalloc PfnRun[16];
        owner.MmapReadLock();
        try
        {
            while (pinned < entries)
            {
                ulong at = ua + (pinned << pageShift);
                long got = Gup.PinUserPagesLocked(owner, new HostVirtAddr(at), entries - pinned, write: true, runs, out int runCount);
                if (got <= 0)
                {
                    e = got == 0 || pinned > 0
                        ? Refusals.Refuse(Errno.EFAULT, "mm_iommu_do_alloc", "pinning stopped at vaddr 0x{0:x} after {1} of {2} pages", at, pinned, entries)
                        : ErrnoExtensions.FromReturn(got);
                    partial = (long)pinned;
                    break;
                }
                for (int i = 0; i < runCount; i++)
                {
                    hpas.Set(pinned, pinned + runs[i].Count - 1, new HpaRun(runs[i].First.Value));
                    pinned += runs[i].Count;
                }
                if ((ulong)got < entries - (pinned - (ulong)got) && runCount < runs.Length)
                {
                    e = Refusals.Refuse(Errno.EFAULT, "mm_iommu_do_alloc", "pinning stopped after {0} of {1} pages from vaddr 0x{2:x}", pinned, entries, ua);
                    partial = (long)pinned;
                    break;
                }
            }
            if (e == Errno.None)
            {
                shift = PageShiftCapLocked(owner, ua, entries, shift);
            }
        }
        finally
        {
            owner.MmapReadUnlock();
        }
        if (entries == 0)
        {
            shift = Math.Min(shift, 63);
        }
        if (e == Errno.None)
        {
            region = new MmIommuRegion(owner, ua, entries, shift, hpas);
            e = regions.TryAdd(region, pageShift);
        }
        if (e != Errno.None)
        {
            region = null;
            UnpinHpas(hpas, pinned);
            mm.Account(owner, null, -(long)entries);
            return partial > 0 ? partial : e.AsReturn();
        }
        return 0;
    }

    /// <summary>The page-shift cap of <c>mm_iommu_do_alloc</c>, VMA by VMA over the pinned range: while the cap is
    /// above PAGE_SHIFT a hugetlb page sets the running size to its huge size, and the cap is the minimum of
    /// itself and the running size (which starts at PAGE_SHIFT and is not reset by a later small page).</summary>
    private int PageShiftCapLocked(AddressSpace owner, ulong ua, ulong entries, int shift)
    {
        owner.AssertMmapLocked();
        int pageShift = ctx.PageShift;
        int running = pageShift;
        ulong page = ua >> pageShift;
        ulong last = page + entries - 1;
        while (entries > 0 && page <= last)
        {
            Vma? vma = owner.FindVmaLocked(new HostVirtAddr(page << pageShift));
            if (vma is null)
            {
                break;
            }
            if (shift > pageShift && vma.Kind == VmaKind.HugeTlb)
            {
                running = pageShift + System.Numerics.BitOperations.Log2(vma.HugePages);
            }
            shift = Math.Min(shift, running);
            page = vma.LastPage + 1;
        }
        return shift;
    }

    /// <summary><c>tce_iommu_prereg_free</c>: puts the region; on success the container drops it from its list.</summary>
    private Errno PreregFreeLocked(MmIommuRegion mem)
    {
        ctx.AssertLocked();
        Errno e = PutRegionLocked(mem);
        if (e == Errno.None)
        {
            _prereg.Remove(mem);
        }
        return e;
    }

    /// <summary><c>mm_iommu_put</c>: the last put of an unmapped region unpins its pages and returns its charge.</summary>
    private Errno PutRegionLocked(MmIommuRegion mem)
    {
        ctx.AssertLocked();
        Errno e = ctx.Mms.Of(mem.Mm).Put(mem, out bool released);
        if (released)
        {
            UnpinHpas(mem.Hpas, mem.Entries);
            mm.Account(mem.Mm, null, -(long)mem.Entries);
            ctx.Emit(TraceKind.SpaprRegionReleased, null, TraceLog.F("ua", mem.Ua), TraceLog.F("entries", mem.Entries));
        }
        return e;
    }

    private void UnpinHpas(RunMap<HpaRun> hpas, ulong pages)
    {
        if (pages == 0)
        {
            return;
        }
        foreach (Run<HpaRun> r in hpas.All())
        {
            // Registration pins for write; the kernel marks pages dirty only where KVM's real-mode path set
            // the region's dirty bit, which the model does not have.
            Gup.UnpinUserPages(ctx.Machine, new PfnRun(new Pfn(r.Value.Pfn), r.Last - r.Start + 1), markDirty: false);
        }
    }
}
