using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// The MAP and UNMAP paths of one type1 container (spec §1.5, §1.6, §3.8, §3.12, §3.13): VFIO_IOMMU_MAP_DMA
/// (<c>vfio_dma_do_map</c>, with the VADDR update), VFIO_IOMMU_UNMAP_DMA (<c>vfio_dma_do_unmap</c>: the v1 and v2 rules,
/// ALL, VADDR invalidation, GET_DIRTY_BITMAP, the unmap notification's restarts) and <c>vfio_remove_dma</c>. One
/// mapping's whole life reads here; each step is its part's: the tree (<see cref="DmaTree"/>), the pins
/// (<see cref="DmaPinning"/>), the charges (<see cref="LockedMemoryAccounting"/>), the bitmaps
/// (<see cref="DirtyTracker"/>), the devices told (<see cref="UnmapNotifier"/>) and held (<see cref="DeviceMemoryHolds"/>).
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>): the typed entry points take it, every
/// <c>*Locked</c> member asserts it; the unmap notification releases it around the drivers' callbacks and the walk
/// starts over. No state of its own.
/// </remarks>
internal sealed class DmaMapUnmap(Type1Context ctx, DmaTree tree, IovaWindows windows, DomainSet domains, DmaPinning pinning, LockedMemoryAccounting accounting,
    DirtyTracker dirty, UnmapNotifier notifier, DeviceMemoryHolds holds)
{
    /// <summary>The source of v6.18's range checks (size 0 and wrapping ranges before the lock, EOVERFLOW).</summary>
    private const string Overflow618 = "linux-6.18: 6012379ede6a (Type1Behavior.OverflowIsEoverflow)";

    // Candidates kept in _candidates between unmaps; a longer list is dropped after use.
    private const int CandidatesKeep = 1024;

    // UNMAP's copy of the mappings its range overlaps (it removes while walking), reused under the lock instead of a
    // new list per call (issue 16: two of the 4 KiB pair's allocations). After a notification released the lock the
    // walk refills it before reading it again, so another UNMAP using it meanwhile does no harm.
    private List<VfioDma> _candidates = [];

    // Mappings UNMAP removed, kept for the next MAPs instead of a new VfioDma each (as the kernel's kmalloc slab keeps
    // freed objects): the one allocation of issue 16's 4 KiB pair, and the GC work behind it. Under the lock.
    private const int SparesKeep = 4;
    private readonly VfioDma[] _spares = new VfioDma[SparesKeep];
    private int _spareCount;

    /// <summary>
    /// VFIO_IOMMU_MAP_DMA: EFAULT (struct copy), EINVAL (argsz, flags, prot/VADDR mix, size 0,
    /// alignment, outside the valid IOVA windows), EOVERFLOW (v6.18: range wraps), ENOENT/EINVAL (VADDR
    /// with no or a mismatching invalidated mapping), EEXIST (overlap), ENOSPC (no slot left), ENOMEM
    /// (RLIMIT_MEMLOCK, allocation), EFAULT (unpinnable memory), ENODEV (no mm), EINTR, or the IOMMU
    /// driver's map error. All or nothing.
    /// </summary>
    // SkipLocalsInit: the struct's buffer is read only after the copy filled it; zeroing it and the other plain locals
    // was 80 bytes of prolog stores on every MAP (16 without, the JIT's listing; issue 16's pair).
    [System.Runtime.CompilerServices.SkipLocalsInit]
    public Errno MapDmaIoctl(VfioCallContext context, ref IoctlArgument argument)
    {
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaMap.MinSize]))
        {
            return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_map_dma", "copy_from_user of the {0}-byte struct vfio_iommu_type1_dma_map faulted",
                (ulong)VfioIommuType1DmaMap.MinSize);
        }
        // minsz is the whole struct: the whole-struct read, inlined, rather than the prefix read's out-of-line call that
        // handles a shorter minsz (0.6 % of issue 16's 4 KiB pair).
        System.Diagnostics.Debug.Assert(VfioIommuType1DmaMap.MinSize == VfioIommuType1DmaMap.SizeOf, "MAP_DMA's minsz is its size");
        VfioIommuType1DmaMap.TryRead(raw, out VfioIommuType1DmaMap map);
        if (map.Argsz < VfioIommuType1DmaMap.MinSize)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_map_dma", "argsz {0} is below minsz {1}", map.Argsz, (ulong)VfioIommuType1DmaMap.MinSize);
        }
        if ((map.Flags & ~(DmaMapFlags.Read | DmaMapFlags.Write | DmaMapFlags.Vaddr)) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_map_dma", "flags 0x{0:x} has bits outside READ|WRITE|VADDR (0x{1:x})", (ulong)map.Flags,
                (ulong)(map.Flags & ~(DmaMapFlags.Read | DmaMapFlags.Write | DmaMapFlags.Vaddr)));
        }
        return MapDma(context.Process, map.Iova, map.Vaddr, map.Size, map.Flags);
    }

    /// <summary>vfio_dma_do_map with a decoded request (also the typed entry point for tests and benchmarks).</summary>
    public Errno MapDma(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        // A MAP that links a mapping says so when it has (DeclareLinked below); only a VADDR update has the checker
        // read the range before it.
        ctx.DeclareChange(iova, size, observe: (flags & DmaMapFlags.Vaddr) != 0);
        if (ctx.Behavior.OverflowIsEoverflow)
        {
            if (size == 0)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", "size is 0", source: Overflow618);
            }
            if (!ByteRange.TryFromStartSize(iova, size, out _) || !ByteRange.TryFromStartSize(vaddr, size, out _))
            {
                return Refusals.Refuse(Errno.EOVERFLOW, "vfio_dma_do_map", "iova 0x{0:x} or vaddr 0x{1:x} + size 0x{2:x} - 1 wraps past 2^64", iova, vaddr, size,
                    source: Overflow618);
            }
        }
        IommuProt prot = ((flags & DmaMapFlags.Write) != 0 ? IommuProt.Write : 0) | ((flags & DmaMapFlags.Read) != 0 ? IommuProt.Read : 0);
        bool vaddrUpdate = (flags & DmaMapFlags.Vaddr) != 0;
        if ((prot != 0 && vaddrUpdate) || (prot == 0 && !vaddrUpdate))
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", vaddrUpdate
                ? "flags 0x{0:x}: VADDR takes neither READ nor WRITE"
                : "flags 0x{0:x}: a mapping needs READ or WRITE (or VADDR alone)", (ulong)flags);
        }
        using (ctx.Lock.EnterScope())
        {
            WidenIfDevicesTakePartLocked();
            ulong pgsize = domains.MinPageSizeLocked;
            if (size == 0 || ((size | iova | vaddr) & (pgsize - 1)) != 0)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", size == 0
                    ? "size is 0"
                    : "iova 0x{0:x}, vaddr 0x{1:x} and size 0x{2:x} must all be multiples of the smallest IOMMU page 0x{3:x}", iova, vaddr, size, pgsize);
            }
            if (!ByteRange.TryFromStartSize(iova, size, out ByteRange range) || !ByteRange.TryFromStartSize(vaddr, size, out _))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", "iova 0x{0:x} or vaddr 0x{1:x} + size 0x{2:x} - 1 wraps past 2^64", iova, vaddr, size,
                    source: "linux-6.12 and older: EINVAL (EOVERFLOW since 6012379ede6a, v6.18)");
            }
            if (vaddrUpdate)
            {
                tree.TryFindFirstLocked(range, out VfioDma? target);
                return UpdateVaddrLocked(caller, target, range, new HostVirtAddr(vaddr));
            }
            // The overlap test and the link are one tree descent: the new mapping is linked where the range is free and
            // unlinked again if a later check refuses (nothing reads the tree in between), instead of a lookup
            // followed by an insert (issue 16's 4 KiB pair). The checks answer in the kernel's order all the same.
            AddressSpace mm = caller.Mm ?? caller.LastMm;
            VfioDma dma = _spareCount > 0
                ? TakeSpareLocked().Renew(range, new HostVirtAddr(vaddr), prot, caller, mm, caller.CapIpcLock, ctx.PageShift)
                : new VfioDma(range, new HostVirtAddr(vaddr), prot, caller, mm, caller.CapIpcLock, ctx.PageShift);
            if (!tree.TryLinkLocked(dma))
            {
                tree.TryFindFirstLocked(range, out VfioDma? hit);
                return Refusals.Refuse(Errno.EEXIST, "vfio_dma_do_map", "[0x{0:x}, 0x{1:x}] overlaps the mapping [0x{2:x}, 0x{3:x}] (vfio_find_dma)",
                    range.Start, range.Last, hit!.Range.Start, hit.Range.Last);
            }
            if (tree.DmaAvailLocked == 0)
            {
                tree.UnlinkLocked(dma);
                return Refusals.Refuse(Errno.ENOSPC, "vfio_dma_do_map", "no DMA mapping slot left: dma_avail is 0 of dma_entry_limit {0}",
                    tree.DmaEntryLimit);
            }
            if (!windows.ContainsWholeLocked(range))
            {
                tree.UnlinkLocked(dma);
                return windows.RefuseOutsideLocked(range, domains.DomainsLocked);
            }
            if (ctx.Faults.ShouldFail(FaultSite.DmaAlloc))
            {
                tree.UnlinkLocked(dma);
                return Refusals.Refuse(Errno.ENOMEM, "vfio_dma_do_map", "kzalloc of the struct vfio_dma for [0x{0:x}, 0x{1:x}] failed (injected)", range.Start, range.Last);
            }
            tree.CountLinkedLocked();
            Errno error = Errno.None;
            if (!domains.HasDomainLocked)
            {
                dma.Size = size;
            }
            else
            {
                error = pinning.PinMapDmaLocked(dma, caller);
                if (error != Errno.None)
                {
                    RemoveLocked(dma);
                    return error;
                }
            }
            if (dirty.TrackingLocked)
            {
                error = dirty.AllocateBitmapLocked(dma, pgsize);
                if (error != Errno.None)
                {
                    RemoveLocked(dma);
                    return error;
                }
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.MapDma, caller, TraceLog.F("iova", iova), TraceLog.F("vaddr", vaddr), TraceLog.F("size", size),
                    TraceLog.F("prot", (int)prot), TraceLog.F("locked_vm", dma.LockedVm));
            }
            ctx.DeclareLinked(dma);   // the checker's hand-over (issue 16, branch checks): the mapping just linked
            return Errno.None;
        }
    }

    // A MAP or UNMAP declares its IOVA range to the checker's journal (ctx.DeclareChange); when devices hold mappings
    // or are notified of unmaps (pfnmap holds, mdev pins), the call can change device state outside that range, so
    // the next check sweeps everything. Asked here, under the lock the call takes anyway, rather than in a lock
    // round trip of its own before it (issue 16's 4 KiB pair); a refusal before the lock changes nothing anywhere.
    private void WidenIfDevicesTakePartLocked()
    {
        ctx.AssertLocked();
        ctx.NoteCallStartLocked(); // the checker's "nothing written since the last check" counts (issue 16, branch checks2)
        if (notifier.DeviceCountLocked > 0 || holds.AnyLocked)
        {
            ctx.Machine.Changes.MarkWide();
        }
    }

    // MAP_DMA with VADDR: only an invalidated mapping with exactly this range may get a new vaddr; its charge
    // moves to the caller's mm first (vfio_change_dma_owner, v6.3+).
    private Errno UpdateVaddrLocked(Process caller, VfioDma? dma, ByteRange range, HostVirtAddr vaddr)
    {
        ctx.AssertLocked();
        if (dma is null)
        {
            return Refusals.Refuse(Errno.ENOENT, "vfio_dma_do_map", "VADDR update: no mapping overlaps [0x{0:x}, 0x{1:x}]", range.Start, range.Last);
        }
        if (!dma.VaddrInvalid)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", "VADDR update: the mapping [0x{0:x}, 0x{1:x}] still has a valid vaddr (unmap it with VADDR first)",
                dma.Range.Start, dma.Range.Last);
        }
        if (dma.Range != range)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", "VADDR update of [0x{0:x}, 0x{1:x}] must name the invalidated mapping [0x{2:x}, 0x{3:x}] exactly",
                range.Start, range.Last, dma.Range.Start, dma.Range.Last);
        }
        Errno e = accounting.ChangeOwnerLocked(dma, caller);
        if (e != Errno.None)
        {
            return e;
        }
        dma.Vaddr = vaddr;
        tree.RevalidateVaddrLocked(dma);
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.MapDmaVaddr, caller, TraceLog.F("iova", range.Start), TraceLog.F("vaddr", vaddr.Value), TraceLog.F("size", range.Size));
        }
        return Errno.None;
    }

    /// <summary>
    /// VFIO_IOMMU_UNMAP_DMA: EFAULT (struct or bitmap copy, size copy-back), EINVAL (argsz, flags, a dirty bitmap with
    /// ALL or VADDR or a short argsz, the user bitmap), then <see cref="UnmapDma(Process, IUserMemory?, ulong, ulong,
    /// DmaUnmapFlags, in VfioBitmap, out ulong)"/>; on success the size removed is written back into <c>size</c>.
    /// </summary>
    public Errno UnmapDmaIoctl(VfioCallContext context, ref IoctlArgument argument)
    {
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_unmap_dma", "copy_from_user of the {0}-byte struct vfio_iommu_type1_dma_unmap faulted",
                (ulong)raw.Length);
        }
        VfioIommuType1DmaUnmap.TryRead(raw, out VfioIommuType1DmaUnmap unmap);
        const DmaUnmapFlags known = DmaUnmapFlags.GetDirtyBitmap | DmaUnmapFlags.All | DmaUnmapFlags.Vaddr;
        if (unmap.Argsz < VfioIommuType1DmaUnmap.MinSize)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_unmap_dma", "argsz {0} is below minsz {1}", unmap.Argsz, (ulong)VfioIommuType1DmaUnmap.MinSize);
        }
        if ((unmap.Flags & ~known) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_unmap_dma", "flags 0x{0:x} has bits outside GET_DIRTY_BITMAP|ALL|VADDR (0x{1:x})",
                (ulong)unmap.Flags, (ulong)(unmap.Flags & ~known));
        }
        VfioBitmap bitmap = default;
        if ((unmap.Flags & DmaUnmapFlags.GetDirtyBitmap) != 0)
        {
            if ((unmap.Flags & (DmaUnmapFlags.All | DmaUnmapFlags.Vaddr)) != 0)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_unmap_dma", "flags 0x{0:x}: GET_DIRTY_BITMAP cannot be combined with ALL or VADDR",
                    (ulong)unmap.Flags);
            }
            if (unmap.Argsz < VfioIommuType1DmaUnmap.MinSizeWithBitmap)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_unmap_dma", "GET_DIRTY_BITMAP: argsz {0} is below {1} (the header and a struct vfio_bitmap)",
                    unmap.Argsz, (ulong)VfioIommuType1DmaUnmap.MinSizeWithBitmap);
            }
            Span<byte> b = stackalloc byte[VfioBitmap.SizeOf];
            if (!argument.TryCopyFrom(VfioIommuType1DmaUnmap.Offsets.Data, b))
            {
                return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_unmap_dma", "copy_from_user of the struct vfio_bitmap at offset {0} faulted",
                    (ulong)VfioIommuType1DmaUnmap.Offsets.Data);
            }
            VfioBitmap.TryRead(b, out bitmap);
            Errno check = DirtyTracker.CheckUserBitmap(bitmap, unmap.Size);
            if (check != Errno.None)
            {
                return check;
            }
        }
        // The caller's memory object only for the dirty bitmap, the one thing UNMAP writes through a user pointer. The
        // bitmap goes by reference (UnmapDma reads it only with GET_DIRTY_BITMAP): passed by value, its 24 zeroed bytes
        // were copied onto the stack on every UNMAP, the copy's loads waiting on the stores that had just zeroed them:
        // UnmapDmaIoctl's own samples 4.6 % of a 4 KiB pair's before, 2.9-4.0 % after (perf, two runs each; issue 16,
        // pair8, docs/benchmarks.md).
        Errno e = UnmapDma(context.Process, (unmap.Flags & DmaUnmapFlags.GetDirtyBitmap) != 0 ? context.Memory : null, unmap.Iova, unmap.Size, unmap.Flags, bitmap, out ulong unmapped);
        if (e != Errno.None)
        {
            return e;
        }
        // The struct goes back as it came (argsz, flags, iova: the bytes copied in) with the size removed in place of the
        // size asked. Not written into the copy first: the copy's 16-byte loads straddled that fresh 8-byte store and
        // waited for it to reach the cache (a store-forwarding stall, 1.1-1.35 % of issue 16's 4 KiB pair's samples on
        // the instruction after it); the argument writes it over the bytes it copied out. With VfioCallContext in a
        // register, the pair's user CPU 0.94-1.02 of before over four sets of rounds under load, not resolved
        // (docs/benchmarks.md, 2026-12-08 pair11).
        return argument.TryCopyToWith(0, raw[..VfioIommuType1DmaUnmap.MinSize], VfioIommuType1DmaUnmap.Offsets.Size, unmapped)
            ? Errno.None
            : Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_unmap_dma", "copy_to_user of the size unmapped (0x{0:x}) faulted; the mappings stay removed", unmapped);
    }

    /// <summary>vfio_dma_do_unmap with a decoded request; <paramref name="unmapped"/> is what the kernel
    /// writes into <c>size</c>; <paramref name="memory"/> (where the user bitmap is written) is needed only with
    /// GET_DIRTY_BITMAP. EBUSY (VADDR with emulated groups), EINVAL (alignment, ALL with a range,
    /// dirty bitmap without tracking or with another page size, v2 bisection, VADDR twice), EOVERFLOW
    /// (v6.18 wrap), EFAULT (bitmap copy; mappings already removed stay removed). A mapping that devices pin
    /// is announced to every registered device with the lock released, and the walk starts over (spec §3.8);
    /// EBUSY is the model's answer where the kernel BUG()s: the same mapping still pinned after 11
    /// notifications (the mapping stays, see <see cref="NotifierRetryBug"/>).</summary>
    public Errno UnmapDma(Process caller, IUserMemory? memory, ulong iova, ulong size, DmaUnmapFlags flags, in VfioBitmap bitmap, out ulong unmapped)
    {
        unmapped = 0;
        bool all = (flags & DmaUnmapFlags.All) != 0;
        ctx.DeclareChange(all ? 0 : iova, all ? ulong.MaxValue : size);
        bool invalidateVaddr = (flags & DmaUnmapFlags.Vaddr) != 0;
        bool getBitmap = (flags & DmaUnmapFlags.GetDirtyBitmap) != 0;
        using (ctx.Lock.EnterScope())
        {
            WidenIfDevicesTakePartLocked();
            ulong pgsize = domains.MinPageSizeLocked;
            if (invalidateVaddr && domains.EmulatedGroupsLocked.Count > 0)
            {
                return Refusals.Refuse(Errno.EBUSY, "vfio_dma_do_unmap", "VADDR invalidation while {0} emulated (mdev) group(s) are attached",
                    (ulong)domains.EmulatedGroupsLocked.Count);
            }
            if ((iova & (pgsize - 1)) != 0)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap", "iova 0x{0:x} is not a multiple of the smallest IOMMU page 0x{1:x}", iova, pgsize);
            }
            ByteRange range;
            if (all)
            {
                if (iova != 0 || size != 0)
                {
                    return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap", "ALL takes iova 0 and size 0, not iova 0x{0:x} size 0x{1:x}", iova, size);
                }
                range = new ByteRange(0, ulong.MaxValue);
            }
            else
            {
                if (size == 0 || (size & (pgsize - 1)) != 0)
                {
                    return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap", size == 0
                        ? "size is 0"
                        : "size 0x{0:x} is not a multiple of the smallest IOMMU page 0x{1:x}", size, pgsize);
                }
                if (!ByteRange.TryFromStartSize(iova, size, out range))
                {
                    return ctx.Behavior.OverflowIsEoverflow
                        ? Refusals.Refuse(Errno.EOVERFLOW, "vfio_dma_do_unmap", "iova 0x{0:x} + size 0x{1:x} - 1 wraps past 2^64", iova, size, source: Overflow618)
                        : Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap", "iova 0x{0:x} + size 0x{1:x} - 1 wraps past 2^64", iova, size,
                            source: "linux-6.12 and older: EINVAL (EOVERFLOW since 6012379ede6a, v6.18)");
                }
            }
            if (getBitmap && (!dirty.TrackingLocked || bitmap.Pgsize != pgsize))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap", !dirty.TrackingLocked
                    ? "GET_DIRTY_BITMAP while dirty tracking is not started"
                    : "GET_DIRTY_BITMAP: bitmap pgsize 0x{0:x} is not the smallest IOMMU page 0x{1:x}", bitmap.Pgsize, pgsize);
            }
            Errno ret = Errno.None;
            VfioDma? dmaLast = null;
            int retries = 0;
            bool again = all || invalidateVaddr || getBitmap || !ctx.OnePageLanes || !TryUnmapExactlyOneLocked(caller, range, out unmapped);
            while (again)
            {
                again = false;
                // The v2 rules are checked again after every notification: mappings may have changed while the
                // lock was released.
                List<VfioDma> candidates = _candidates;
                tree.OverlappingLocked(range, candidates);
                if (ctx.V2 && !all && !DmaTree.NoBisection(range, candidates))
                {
                    ret = tree.RefuseBisectionLocked(range, "vfio_dma_do_unmap");
                    break;
                }
                for (int i = 0; i < candidates.Count; i++)
                {
                    VfioDma dma = candidates[i];
                    if (!ctx.V2 && range.Start > dma.Range.Start)
                    {
                        break;
                    }
                    if (ctx.Behavior.UnmapOwnerCheck && !ReferenceEquals(dma.Task.Mm, caller.Mm))
                    {
                        // v4.10-v5.19 (8f0d5bb95f76 until ffed0518d871): only a task sharing the owner's current mm
                        // may unmap; the walk ends here with success and the size removed so far.
                        break;
                    }
                    if (invalidateVaddr)
                    {
                        if (dma.VaddrInvalid)
                        {
                            for (int j = 0; j < i; j++)
                            {
                                tree.RevalidateVaddrLocked(candidates[j]);
                            }
                            unmapped = 0;
                            ret = Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_unmap",
                                "VADDR: the mapping [0x{0:x}, 0x{1:x}] is already invalidated; the {2} invalidated before it by this call are valid again",
                                dma.Range.Start, dma.Range.Last, (ulong)i);
                            break;
                        }
                        tree.InvalidateVaddrLocked(dma);
                        unmapped += dma.Size;
                        continue;
                    }
                    if (dma.HasExternalPins)
                    {
                        // Spec §3.8: the devices must unpin the whole mapping first; the same mapping still pinned
                        // after the first notification and ten retries is the kernel's BUG().
                        if (ReferenceEquals(dmaLast, dma))
                        {
                            if (++retries > UnmapNotifier.RetryLimit)
                            {
                                ret = notifier.RecordRetryBugLocked(dma, retries);
                                break;
                            }
                        }
                        else
                        {
                            dmaLast = dma;
                            retries = 0;
                        }
                        notifier.NotifyLocked(dma);
                        again = true;
                        break;
                    }
                    if (getBitmap)
                    {
                        ret = dirty.UpdateUserBitmapLocked(memory!, new HostVirtAddr(bitmap.Data), dma, new Iova(range.Start), pgsize);
                        if (ret != Errno.None)
                        {
                            break;
                        }
                    }
                    unmapped += dma.Size;
                    RemoveLocked(dma);
                    KeepSpareLocked(dma);
                }
            }
            // Holds no mapping past the call (removed ones would stay reachable).
            _candidates.Clear();
            if (_candidates.Capacity > CandidatesKeep)
            {
                _candidates = [];
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(invalidateVaddr ? TraceKind.UnmapDmaVaddr : TraceKind.UnmapDma, caller, TraceLog.F("iova", iova), TraceLog.F("size", size),
                    TraceLog.F("flags", (int)flags), TraceLog.F("unmapped", unmapped), TraceLog.F("errno", ret.ToString()));
            }
            return ret;
        }
    }
    // UNMAP of a range that is exactly one mapping (every 4 KiB unmap of issue 16's pair): the walk of UnmapDma would collect
    // that one mapping into the candidates list, find no bisection and remove it; here one descent of the tree finds it
    // and it is removed at once, with the same size, removal and spare (the walk's end, its trace and errno, is shared).
    // Only where the walk could do nothing else: no ALL, VADDR or dirty bitmap, no external pins (the notification loop),
    // and under the v4.10-v5.19 owner check only a caller of the owner's mm (else the walk ends at once, nothing removed).
    // v1 removes it the same way (it starts at the range's start). False, with nothing changed, otherwise. With the
    // one-page MAP lane, the pair 515 → 438 ns (docs/benchmarks.md, 2026-12-07 pair5).
    private bool TryUnmapExactlyOneLocked(Process caller, ByteRange range, out ulong unmapped)
    {
        ctx.AssertLocked();
        unmapped = 0;
        VfioDma? dma = tree.FindLocked(new Iova(range.Start));
        if (dma is null || dma.Range != range || dma.HasExternalPins || (ctx.Behavior.UnmapOwnerCheck && !ReferenceEquals(dma.Task.Mm, caller.Mm)))
        {
            return false;
        }
        unmapped = dma.Size;
        RemoveLocked(dma);
        KeepSpareLocked(dma);
        ctx.OnePageLanesTaken++;
        return true;
    }

    /// <summary>vfio_remove_dma: unmaps, unpins and un-charges the mapping, unlinks it and returns its slot.</summary>
    public void RemoveLocked(VfioDma dma)
    {
        ctx.AssertLocked();
        if (dma.HasExternalPins && ctx.Trace.Enabled)
        {
            // WARN_ON(!RB_EMPTY_ROOT(&dma->pfn_list)): the external pins are forgotten, never released (a leak
            // the checker reports as pins-balanced); drivers must unpin before their device closes.
            ctx.Emit(TraceKind.Warn, dma.Task, TraceLog.F("what", "removing a mapping with external pins"), TraceLog.F("iova", dma.Iova.Value),
                TraceLog.F("pins", dma.VpfnCount));
        }
        pinning.UnmapUnpinLocked(dma, doAccounting: true);
        holds.ReleaseLocked(dma);
        tree.RemoveLocked(dma);
        dma.Bitmap = null;
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.RemoveDma, dma.Task, TraceLog.F("iova", dma.Iova.Value), TraceLog.F("size", dma.RequestedSize));
        }
    }
    // A removed mapping becomes a spare only when nothing can still refer to it: it never had external pins or a bitmap
    // (mdev drivers and the notification loop's retry count refer to mappings with pins), no device holds or is notified
    // of mappings (pfnmap holds keep lists of them), and the charges are synchronous (async-lock-accounting's deferred
    // work reads the mapping when it runs). The candidates list still names it until this UNMAP ends, but the walk
    // reads each candidate once, and a walk that released the lock refills the list before reading it again.
    private void KeepSpareLocked(VfioDma dma)
    {
        ctx.AssertLocked();
        if (_spareCount < SparesKeep && dma.IsBare && notifier.DeviceCountLocked == 0 && !holds.AnyLocked && !ctx.Behavior.AsyncLockAccounting)
        {
            _spares[_spareCount++] = dma;
        }
    }

    private VfioDma TakeSpareLocked()
    {
        ctx.AssertLocked();
        VfioDma dma = _spares[--_spareCount];
        _spares[_spareCount] = null!;
        return dma;
    }

    /// <summary>vfio_iommu_unmap_unpin_all: every mapping goes (the last group left, or release).</summary>
    public void RemoveAllLocked()
    {
        ctx.AssertLocked();
        foreach (VfioDma dma in tree.AllLocked())
        {
            RemoveLocked(dma);
        }
    }
}
