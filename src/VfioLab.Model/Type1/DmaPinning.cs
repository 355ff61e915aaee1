using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// Pinning a mapping's pages from a user mm and mapping them into the domains, and the reverse, for one type1
/// container (spec §2.9, §3.2, §3.3, §3.5): <c>vfio_pin_pages_remote</c> (a chunk at a time, through the
/// <see cref="PinBatch"/>, charged per chunk), <c>vfio_pin_map_dma</c>, <c>vfio_unpin_pages_remote</c>,
/// <c>put_pfn</c> and <c>vfio_unmap_unpin</c> (unpin only after the IOTLB flush).
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_batch</c> (struct vfio_batch,
/// one per container here: pages pinned ahead of use) and <c>_unmapScratch</c>, and every mapping this touches;
/// every <c>*Locked</c> member asserts it. GUP takes the mm's mmap lock inside it. How cost follows extents: GUP
/// returns physically contiguous runs, a chunk is a maximal run of one reserved-ness continued across batch refills
/// exactly where the kernel's 512-page batches would continue it, and nothing is allocated per chunk or page.
/// </remarks>
internal sealed class DmaPinning
{
    // Runs kept in _unmapScratch between unmaps; a longer list is dropped after use.
    private const int UnmapScratchKeep = 1024;

    private readonly Type1Context _ctx;
    private readonly LockedMemoryAccounting _accounting;
    private readonly PfnmapTranslation _pfnmap;
    private readonly DomainSet _domains;
    private readonly PinBatch _batch;
    private List<MappedRun> _unmapScratch = [];

    public DmaPinning(Type1Context ctx, LockedMemoryAccounting accounting, PfnmapTranslation pfnmap, DomainSet domains)
    {
        _ctx = ctx;
        _accounting = accounting;
        _pfnmap = pfnmap;
        _domains = domains;
        _batch = new PinBatch(ctx.Behavior.DisableHugepages ? 1 : PinBatch.DefaultRuns);
    }

    /// <summary>
    /// vfio_pin_pages_remote: pins one chunk from byte <paramref name="offset"/> of the mapping, at its vaddr in the
    /// caller's <paramref name="mm"/>: physically contiguous and of one reserved-ness, at most
    /// <paramref name="npage"/> pages, and charges its non-reserved pages that have no external pin (ENOMEM past
    /// <paramref name="limit"/>, the caller's RLIMIT_MEMLOCK in pages). Returns the chunk's pages with its first
    /// frame, or -errno with nothing of the chunk left pinned. Pages pinned past the chunk stay in the batch for the
    /// next call; the caller releases them at the end (<see cref="ReleaseBatchLocked"/>).
    /// </summary>
    public long PinPagesRemoteLocked(VfioDma dma, AddressSpace mm, ulong offset, ulong npage, ulong limit, out Pfn pfnBase)
    {
        _ctx.AssertLocked();
        pfnBase = default;
        if (_ctx.Behavior.DisableHugepages)
        {
            npage = 1;
        }
        PhysicalMemory memory = _ctx.Machine.Memory;
        bool write = (dma.Prot & IommuProt.Write) != 0;
        bool haveBase = false;
        bool rsvd = false;
        ulong pinned = 0;
        long lockAcct = 0;
        Errno error = Errno.None;
        int shift = _ctx.PageShift;
        while (npage > 0 && error == Errno.None)
        {
            if (_batch.IsEmpty)
            {
                HostVirtAddr vaddr = dma.VaddrAt(offset);
                long got = _batch.Refill(mm, vaddr, npage, write);
                if (got <= 0 && PfnmapTranslation.IsPfnmap(mm, vaddr))
                {
                    // GUP failed (it refuses VM_PFNMAP): on a PFNMAP VMA, translate through the page
                    // table instead, whatever GUP's error was (vaddr_get_pfns, §3.2).
                    Errno e = _pfnmap.TranslateLocked(dma, mm, vaddr, npage, write, out Pfn pfn, out ulong count);
                    if (e != Errno.None)
                    {
                        error = e;
                        break;
                    }
                    if (!haveBase)
                    {
                        pfnBase = pfn;
                        rsvd = true;
                        haveBase = true;
                    }
                    if (pfn != pfnBase.Plus(pinned) || !rsvd)
                    {
                        break;
                    }
                    pinned += count;
                    npage -= count;
                    offset += count << shift;
                    continue;
                }
                if (got <= 0)
                {
                    error = got == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(got);
                    break;
                }
            }
            if (!haveBase)
            {
                // The chunk starts at the batch's first unconsumed page, fresh or left by the last chunk.
                pfnBase = _batch.Current;
                rsvd = memory.IsReservedOrInvalid(pfnBase);
                haveBase = true;
            }
            bool chunkEnds = false;
            while (!_batch.IsEmpty && npage > 0)
            {
                Pfn pfn = _batch.Current;
                if (pfn != pfnBase.Plus(pinned) || rsvd != memory.IsReservedOrInvalid(pfn))
                {
                    chunkEnds = true;
                    break;
                }
                ulong n = Math.Min(_batch.CurrentRunLeft, npage);
                if (!rsvd)
                {
                    long chargeable = (long)(n - dma.CountVpfns(dma.RangeAt(offset, n << shift)));
                    if (_accounting.ExceedsLimitLocked(dma, mm, lockAcct + chargeable, limit))
                    {
                        error = LockedMemoryAccounting.RefuseMemlock("vfio_pin_pages_remote", mm.LockedVm, (ulong)(lockAcct + chargeable), limit);
                        break;
                    }
                    lockAcct += chargeable;
                }
                pinned += n;
                npage -= n;
                offset += n << shift;
                _batch.Consume(n);
            }
            if (chunkEnds)
            {
                break;
            }
        }
        if (error == Errno.None)
        {
            error = _accounting.LockAcctLocked(dma, lockAcct, async: false);
        }
        if (error != Errno.None)
        {
            if (pinned > 0 && !rsvd)
            {
                Gup.UnpinUserPages(_ctx.Machine, new PfnRun(pfnBase, pinned), write, dma.Task.Pid);
            }
            _batch.Release(_ctx.Machine, write, dma.Task.Pid);
            return error.AsReturn();
        }
        return (long)pinned;
    }

    /// <summary>vfio_batch_unpin: releases the pages pinned ahead of use and left unused (dirtying them when
    /// <paramref name="dirty"/>), at the end of a MAP or a replay.</summary>
    public void ReleaseBatchLocked(bool dirty, int pid)
    {
        _ctx.AssertLocked();
        _batch.Release(_ctx.Machine, dirty, pid);
    }

    /// <summary>
    /// vfio_pin_map_dma: pins and maps the mapping chunk by chunk from <paramref name="caller"/>'s mm (ENODEV without
    /// one), growing <see cref="VfioDma.Size"/>; a chunk the domains refuse is unpinned and un-charged at once. On any
    /// failure the caller removes the whole mapping (what was pinned, charged and mapped so far goes with it).
    /// </summary>
    public Errno PinMapDmaLocked(VfioDma dma, Process caller)
    {
        _ctx.AssertLocked();
        AddressSpace? mm = caller.Mm;
        Errno error = Errno.None;
        if (mm is null)
        {
            error = Refusals.Refuse(Errno.ENODEV, "vfio_pin_map_dma", "the caller (process {0}) has no mm", (ulong)caller.Pid);
        }
        else
        {
            int shift = _ctx.PageShift;
            ulong limit = caller.MemlockLimitPages;
            ulong remaining = dma.RequestedSize;
            while (remaining > 0)
            {
                long npage = PinPagesRemoteLocked(dma, mm, dma.Size, remaining >> shift, limit, out Pfn pfn);
                if (npage <= 0)
                {
                    error = npage == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(npage);
                    break;
                }
                ulong bytes = (ulong)npage << shift;
                error = _domains.MapLocked(dma.IovaAt(dma.Size), pfn, (ulong)npage, dma.Prot);
                if (error != Errno.None)
                {
                    UnpinPagesRemoteLocked(dma, dma.RangeAt(dma.Size, bytes), pfn, doAccounting: true);
                    break;
                }
                remaining -= bytes;
                dma.Size += bytes;
            }
            _batch.Release(_ctx.Machine, (dma.Prot & IommuProt.Write) != 0, caller.Pid);
        }
        dma.IommuMapped = true;
        if (error != Errno.None && _ctx.Trace.Enabled)
        {
            _ctx.Emit(TraceKind.MapDmaUnwind, caller, TraceLog.F("iova", dma.Iova.Value), TraceLog.F("mapped", dma.Size), TraceLog.F("errno", error.ToString()));
        }
        return error;
    }

    /// <summary>vfio_unpin_pages_remote: unpins the non-reserved pages of the chunk <paramref name="chunk"/> (IOVAs of
    /// the mapping) translated from <paramref name="pfn"/> on, dirtying them for a writable mapping; with accounting,
    /// un-charges all but the externally pinned ones. Returns the pages unpinned.</summary>
    public long UnpinPagesRemoteLocked(VfioDma dma, ByteRange chunk, Pfn pfn, bool doAccounting)
    {
        _ctx.AssertLocked();
        long unlocked = (long)PutPfns(dma, pfn, chunk.Size >> _ctx.PageShift);
        if (doAccounting && unlocked > 0)
        {
            long locked = (long)dma.CountVpfns(chunk);
            _accounting.LockAcctLocked(dma, locked - unlocked, async: true);
        }
        return unlocked;
    }

    /// <summary>put_pfn over a run of <paramref name="count"/> frames from <paramref name="first"/>, for the mapping's
    /// owner (dirtying them when it is writable): reserved and invalid pfns were never pinned and are skipped.
    /// Returns the frames unpinned.</summary>
    public ulong PutPfns(VfioDma dma, Pfn first, ulong count)
    {
        PhysicalMemory memory = _ctx.Machine.Memory;
        if (memory.ZeroFrame is { } zero && zero.Value - first.Value < count)
        {
            // The zero frame (reserved, one page per IOMMU chunk) may sit beside pinned frames that the unmap joined.
            ulong before = zero.Value - first.Value;
            return PutPfns(dma, first, before) + PutPfns(dma, zero.Plus(1), count - before - 1);
        }
        ulong frames = memory.FrameCount;
        if (count == 0 || first.Value >= frames || memory.IsReservedOrInvalid(first))
        {
            return 0;
        }
        ulong n = Math.Min(count, frames - first.Value);
        Gup.UnpinUserPages(_ctx.Machine, new PfnRun(first, n), (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
        return n;
    }

    /// <summary>
    /// vfio_unmap_unpin: the mapping's translations leave every domain (<see cref="DomainSet.UnmapLocked"/>: the first
    /// last, with deferred invalidation, then flushed) and only then are the frames the first domain translated
    /// unpinned, so no page is unpinned while a domain may still reach it (spec §3.5). With accounting the unpinned
    /// pages are un-charged and 0 is returned; otherwise their count. Nothing to do without a domain or a pinned part.
    /// </summary>
    public long UnmapUnpinLocked(VfioDma dma, bool doAccounting)
    {
        _ctx.AssertLocked();
        if (dma.Size == 0 || !_domains.HasDomainLocked)
        {
            return 0;
        }
        List<MappedRun> runs = _unmapScratch;
        _domains.UnmapLocked(dma, runs);
        long unlocked = (long)UnpinTranslatedLocked(dma, runs);
        runs.Clear();
        if (runs.Capacity > UnmapScratchKeep)
        {
            // A huge scattered unmap grew it: do not keep megabytes alive for the next 4 KiB unmap.
            _unmapScratch = [];
        }
        dma.IommuMapped = false;
        if (doAccounting)
        {
            _accounting.LockAcctLocked(dma, -unlocked, async: true);
            return 0;
        }
        return unlocked;
    }

    /// <summary>
    /// Unpins the frames a mapping's runs translated to, after the flush. Runs are sorted by frame and
    /// physically adjacent ones joined, so frames scattered in small runs are unpinned in a few calls
    /// (the pin counts and dirty bits end the same as unpinning run by run in IOVA order).
    /// </summary>
    private ulong UnpinTranslatedLocked(VfioDma dma, List<MappedRun> runs)
    {
        _ctx.AssertLocked();
        int shift = _ctx.PageShift;
        if (runs.Count == 0)
        {
            return 0;
        }
        if (runs.Count == 1)
        {
            return PutPfns(dma, Pfn.FromPhys(runs[0].Phys, shift), runs[0].Iova.Size >> shift);
        }
        // Primitive keys sort without a comparison delegate; the arrays are rented, not left to the GC.
        int count = runs.Count;
        ulong[] phys = System.Buffers.ArrayPool<ulong>.Shared.Rent(count);
        ulong[] sizes = System.Buffers.ArrayPool<ulong>.Shared.Rent(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                phys[i] = runs[i].Phys.Value;
                sizes[i] = runs[i].Iova.Size;
            }
            Array.Sort(phys, sizes, 0, count);
            ulong unlocked = 0;
            int k = 0;
            while (k < count)
            {
                ulong start = phys[k];
                ulong bytes = sizes[k];
                k++;
                while (k < count && phys[k] == start + bytes)
                {
                    bytes += sizes[k];
                    k++;
                }
                unlocked += PutPfns(dma, new Pfn(start >> shift), bytes >> shift);
            }
            return unlocked;
        }
        finally
        {
            System.Buffers.ArrayPool<ulong>.Shared.Return(phys);
            System.Buffers.ArrayPool<ulong>.Shared.Return(sizes);
        }
    }
}
