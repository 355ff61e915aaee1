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
/// <c>put_pfn</c> and <c>vfio_unmap_unpin</c> (unpin only after the IOTLB flush). MAP works a GUP batch at a time and
/// UNMAP a bounded batch of runs at a time (issue 16; the reasons are at <see cref="PinMapBatchLocked"/> and
/// <see cref="UnmapUnpinLocked"/>).
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_batch</c> (struct vfio_batch,
/// one per container here: pages pinned ahead of use), the chunk and unmap buffers, and every mapping this touches;
/// every <c>*Locked</c> member asserts it. GUP takes the mm's mmap lock inside it. How cost follows extents: GUP
/// returns physically contiguous runs, a chunk is a maximal run of one reserved-ness continued across batch refills
/// exactly where the kernel's 512-page batches would continue it, and nothing is allocated per chunk or page.
/// </remarks>
internal sealed class DmaPinning
{
    // Runs of the first domain one unmap batch takes (UnmapUnpinLocked); see there for why this size.
    private const int UnmapBatchRuns = 512;

    // Chunks one MAP batch takes at most (the kernel's batch is 512 pages).
    private const int MapBatchChunks = 512;

    // Pieces kept in the unpin list between unmaps; a longer list is dropped after use.
    private const int UnpinKeep = 1024;

    // Pieces an unmap collects before it asks whether they can be unpinned at once (UnmapUnpinLocked): 4 MiB of them.
    // At 64 Ki pieces, 4 GiB in 4-page runs (partly dense windows) re-merged its sparse remainder per flush: 66 -> 84
    // ns/page; at 256 Ki it unpins once, as before, and 64 GiB holds at most 4 MiB of pieces (0.25 B/page).
    private const int UnpinStreamPieces = 262144;

    // Pieces after which an unmap whose sampled pieces all land in dense windows of the pin map unpins what it holds
    // (UnmapUnpinLocked): 256 KiB of them, which stay in the CPU's 2 MiB L2 cache from the sink that writes them to the
    // unpin passes that read them; 4 MiB of them were streamed from L3 by each of the unpin's passes, and the list
    // that held them was grown (and zeroed) again by every unmap. Measured (issue 16; docs/benchmarks.md, 2026-12-07
    // "onepage5"): 4 GiB on 1-page runs, UNMAP's peak heap 52.7 -> 45.2 B/page and its allocations 14.1 -> 6.6 B/page;
    // its CPU time 0.050 -> 0.048 s (medians of 5 under load 14, within the noise).
    private const int UnpinDensePieces = 16384;

    private readonly Type1Context _ctx;
    private readonly LockedMemoryAccounting _accounting;
    private readonly PfnmapTranslation _pfnmap;
    private readonly DomainSet _domains;
    private readonly PinBatch _batch;
    // One MAP batch's chunks as the physical ranges the IOMMU maps (a chunk's frames are its range shifted down), and
    // whether each is reserved (never pinned or charged): at most one chunk per run of the GUP batch. Written once, as
    // ranges, by whatever takes the chunk: a second array of (frame, pages) that a loop then turned into ranges was a
    // pass of its own per page on memory shattered into 1-page runs (issue 16; docs/benchmarks.md, 2026-12-08
    // "onepage10").
    private readonly bool[] _chunkReserved;
    private readonly ByteRange[] _chunkPhys;
    // One unmap batch of the first domain's runs, and the pieces of frames to unpin once every batch is flushed.
    private readonly List<MappedRun> _unmapRuns = new(UnmapBatchRuns);
    private List<PfnRun> _unpin = [];
    // A large unmap's pieces of one word each, gathered as bits to be unpinned in frame order (UnmapUnpinLocked).
    private readonly FrameBitSet _unpinBits = new();
    // put_pfn's pieces (at most two: a zero frame splits a run).
    private readonly List<PfnRun> _putPieces = new(2);

    public DmaPinning(Type1Context ctx, LockedMemoryAccounting accounting, PfnmapTranslation pfnmap, DomainSet domains)
    {
        _ctx = ctx;
        _accounting = accounting;
        _pfnmap = pfnmap;
        _domains = domains;
        _batch = new PinBatch(ctx.Behavior.DisableHugepages ? 1 : PinBatch.DefaultRuns);
        _chunkReserved = new bool[MapBatchChunks];
        _chunkPhys = new ByteRange[MapBatchChunks];
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
        long pinned = PinChunkLocked(dma, mm, offset, npage, limit, 0, out pfnBase, out bool rsvd, out long lockAcct);
        if (pinned <= 0)
        {
            return pinned;
        }
        Errno error = _accounting.LockAcctLocked(dma, lockAcct, async: false);
        if (error != Errno.None)
        {
            if (!rsvd)
            {
                Gup.UnpinUserPages(_ctx.Machine, new PfnRun(pfnBase, (ulong)pinned), (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
            }
            _batch.Release(_ctx.Machine, (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
            return error.AsReturn();
        }
        return pinned;
    }

    /// <summary>
    /// vfio_pin_pages_remote up to the charge: pins one chunk as <see cref="PinPagesRemoteLocked"/> does, checking
    /// RLIMIT_MEMLOCK as if <paramref name="pending"/> pages (the chunks before it in the same batch, not charged yet)
    /// were already charged, and returns in <paramref name="lockAcct"/> what the chunk would charge, for the caller to
    /// charge. Returns the chunk's pages, or -errno with nothing of the chunk left pinned and the batch released.
    /// </summary>
    private long PinChunkLocked(VfioDma dma, AddressSpace mm, ulong offset, ulong npage, ulong limit, long pending, out Pfn pfnBase, out bool rsvd,
        out long lockAcct)
    {
        _ctx.AssertLocked();
        pfnBase = default;
        rsvd = false;
        lockAcct = 0;
        if (_ctx.Behavior.DisableHugepages)
        {
            npage = 1;
        }
        PhysicalMemory memory = _ctx.Machine.Memory;
        bool write = (dma.Prot & IommuProt.Write) != 0;
        bool haveBase = false;
        ulong pinned = 0;
        Errno error = Errno.None;
        int shift = _ctx.PageShift;
        while (npage > 0 && error == Errno.None)
        {
            if (_batch.IsEmpty)
            {
                HostVirtAddr vaddr = dma.VaddrAt(offset);
                long got = _refilled != 0 ? TakeRefilled() : _batch.Refill(mm, vaddr, npage, write);
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
                // The chunk's first frame is pfnBase itself, whose reserved-ness was just read.
                if (pfn != pfnBase.Plus(pinned) || (pinned != 0 && rsvd != memory.IsReservedOrInvalid(pfn)))
                {
                    chunkEnds = true;
                    break;
                }
                ulong n = Math.Min(_batch.CurrentRunLeft, npage);
                if (!rsvd)
                {
                    long chargeable = (long)(n - dma.CountVpfns(dma.RangeAt(offset, n << shift)));
                    if (_accounting.ExceedsLimitLocked(dma, mm, pending + lockAcct + chargeable, limit))
                    {
                        error = LockedMemoryAccounting.RefuseMemlock("vfio_pin_pages_remote", mm.LockedVm, (ulong)(pending + lockAcct + chargeable), limit);
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

    // A failed GUP of PinMapOnePageLocked: what the next refill of the batch path (PinChunkLocked's first, at the same
    // vaddr and page count) answers instead of asking GUP again; 0 when none is pending. Under the lock.
    private long _refilled;

    private long TakeRefilled()
    {
        long got = _refilled;
        _refilled = 0;
        return got;
    }

    /// <summary>vfio_batch_unpin: releases the pages pinned ahead of use and left unused (dirtying them when
    /// <paramref name="dirty"/>), at the end of a MAP or a replay.</summary>
    public void ReleaseBatchLocked(bool dirty, int pid)
    {
        _ctx.AssertLocked();
        _batch.Release(_ctx.Machine, dirty, pid);
    }

    /// <summary>
    /// vfio_pin_map_dma: pins and maps the mapping from <paramref name="caller"/>'s mm (ENODEV without one), a GUP
    /// batch at a time (<see cref="PinMapBatchLocked"/>), growing <see cref="VfioDma.Size"/> by what every domain
    /// holds. On any failure the caller removes the whole mapping (what was pinned, charged and mapped so far goes
    /// with it).
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
            // A batch is one chunk (the kernel's exact sequence of pins, charges, maps and their trace events) while
            // tracing, under the deferred lock accounting of async-lock-accounting (a charge may lag, and the next
            // chunk's limit check sees the lag), and when the charge goes to another mm than the one the limit is
            // checked against (exec-locked-vm-underflow): there, charging a batch at once could be observed.
            AddressSpace? charged = _ctx.Behavior.ExecLockedVmUnderflow ? dma.Task.Mm : dma.Mm;
            int maxChunks = _ctx.Trace.Enabled || _ctx.Behavior.AsyncLockAccounting || !ReferenceEquals(charged, mm) ? 1 : _chunkPhys.Length;
            ulong limit = caller.MemlockLimitPages;
            if (maxChunks > 1 && _ctx.OnePageLanes && dma.RequestedSize == _ctx.PageSize && dma.Size == 0 && dma.VpfnCount == 0 && _batch.IsEmpty)
            {
                error = PinMapOnePageLocked(dma, mm, limit);
            }
            while (dma.Size < dma.RequestedSize && error == Errno.None)
            {
                error = PinMapBatchLocked(dma, mm, limit, maxChunks);
            }
            System.Diagnostics.Debug.Assert(_refilled == 0, "the one-page lane's GUP answer was taken by the batch path's refill");
            _batch.Release(_ctx.Machine, (dma.Prot & IommuProt.Write) != 0, caller.Pid);
        }
        dma.IommuMapped = true;
        if (error != Errno.None && _ctx.Trace.Enabled)
        {
            _ctx.Emit(TraceKind.MapDmaUnwind, caller, TraceLog.F("iova", dma.Iova.Value), TraceLog.F("mapped", dma.Size), TraceLog.F("errno", error.ToString()));
        }
        return error;
    }

    /// <summary>
    /// vfio_pin_map_dma of a one-page mapping in one straight line (issue 16's 4 KiB pair): GUP's one page into the batch
    /// as the batch path's refill would pin it, then, where the page is reserved or its charge stays within
    /// RLIMIT_MEMLOCK, the charge (one <c>vfio_lock_acct</c>), the IOPTE (<see cref="DomainSet.MapChunksLocked"/> of the one page, straight to the domain's map where there is one domain) and the
    /// size, without the batch path's chunk search, chunk arrays and span plumbing (with the exact one-mapping UNMAP, the
    /// pair 515 → 438 ns in BenchmarkDotNet at load 5; docs/benchmarks.md, 2026-12-07 pair5, with the cost ladder that
    /// shows the rest is in the layers, not the glue). Taken only where a batch may hold several chunks
    /// (nothing traced, synchronous charges to the caller's mm: <see cref="PinMapDmaLocked"/>) and the mapping has no
    /// external pin. What it does not finish it leaves exactly where the batch path would be at that point, for the
    /// caller's loop (<see cref="PinMapBatchLocked"/>) to go on: a failed GUP's answer for the chunk's refill
    /// (<see cref="_refilled"/>, so GUP and its fault site are asked once), a page over the limit still in the batch
    /// (the refusal, its unwinding and its errno are <see cref="PinChunkLocked"/>'s). A failed charge or map unwinds as
    /// the batch path does (the page unpinned, or unpinned and un-charged). Tested against the batch path on a twin host
    /// (OnePageLaneTests).
    /// </summary>
    private Errno PinMapOnePageLocked(VfioDma dma, AddressSpace mm, ulong limit)
    {
        _ctx.AssertLocked();
        bool write = (dma.Prot & IommuProt.Write) != 0;
        long got = _batch.Refill(mm, dma.Vaddr, 1, write);
        if (got <= 0)
        {
            _refilled = got;
            return Errno.None;
        }
        Pfn pfn = _batch.Current;
        bool rsvd = _ctx.Machine.Memory.IsReservedOrInvalid(pfn);
        if (!rsvd && !_accounting.WithinLimitLocked(dma, mm, 1, limit))
        {
            return Errno.None;
        }
        _batch.Consume(1);
        Errno error = rsvd ? Errno.None : _accounting.LockAcctLocked(dma, 1, async: false);
        if (error != Errno.None)
        {
            Gup.UnpinUserPages(_ctx.Machine, new PfnRun(pfn, 1), write, dma.Task.Pid);
            return error;
        }
        int shift = _ctx.PageShift;
        ByteRange page = ByteRange.FromStartSize(pfn.ToPhys(shift).Value, 1UL << shift);
        error = _domains.MapChunksLocked(dma.Iova, new ReadOnlySpan<ByteRange>(in page), dma.Prot, out int mapped);
        if (mapped == 1)
        {
            dma.Size = 1UL << shift;
            _ctx.OnePageLanesTaken++;
            return error;
        }
        UnpinPagesRemoteLocked(dma, dma.RangeAt(0, 1UL << shift), pfn, doAccounting: true);
        return error;
    }

    /// <summary>
    /// One step of vfio_pin_map_dma over a whole GUP batch (issue 16): the chunks the batch holds are pinned
    /// (<see cref="PinChunkLocked"/>, each checked against RLIMIT_MEMLOCK with the chunks before it counted), charged in
    /// one <c>vfio_lock_acct</c> (one trip through the mm's lock instead of one per chunk) and mapped into every domain
    /// in one call per domain (<see cref="DomainSet.MapChunksLocked"/>). On memory shattered into 1-page runs a chunk
    /// is a page, and these per-chunk round trips cost a lock round trip and a call each. What stays per chunk is what
    /// the kernel's behaviour shows: the limit check (ENOMEM at the chunk that crosses it), the fault sites (asked as
    /// often), the all-or-nothing of each chunk and which error MAP returns (the first in the kernel's chunk-by-chunk
    /// order, for the errors that happen without fault injection). A failure leaves the mapping's
    /// <see cref="VfioDma.Size"/> covering exactly what is pinned, charged and in every domain, as the kernel's loop
    /// would after its failing chunk, and nothing of the batch beyond it; the caller's removal of the mapping makes the
    /// end state the kernel's. Under fault injection the sites are asked in another order than the kernel's (a batch's
    /// charges before its maps), so the n-th call may fall on another site; every failure still unwinds completely.
    /// </summary>
    private Errno PinMapBatchLocked(VfioDma dma, AddressSpace mm, ulong limit, int maxChunks)
    {
        _ctx.AssertLocked();
        int shift = _ctx.PageShift;
        bool write = (dma.Prot & IommuProt.Write) != 0;
        ulong offset = dma.Size;
        int n = 0;
        long charge = 0;
        int charges = 0;
        Errno pinError = Errno.None;
        do
        {
            n = TakeChunksWithinBatchLocked(dma, mm, limit, maxChunks, n, ref offset, ref charge, ref charges);
            if (n == maxChunks || offset >= dma.RequestedSize)
            {
                break;
            }
            long got = PinChunkLocked(dma, mm, offset, (dma.RequestedSize - offset) >> shift, limit, charge, out Pfn pfn, out bool rsvd, out long lockAcct);
            if (got <= 0)
            {
                pinError = got == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(got);
                break;
            }
            _chunkPhys[n] = ByteRange.FromStartSize(pfn.ToPhys(shift).Value, (ulong)got << shift);
            _chunkReserved[n] = rsvd;
            n++;
            charge += lockAcct;
            charges += lockAcct != 0 ? 1 : 0;
            offset += (ulong)got << shift;
        }
        while (n < maxChunks && offset < dma.RequestedSize && !_batch.IsEmpty);
        // The chunks pinned before a failing one are charged and mapped even so: the kernel did that before it came to
        // the failing chunk, and an error there (an IOMMU whose smallest page is larger than a chunk refuses it with
        // EINVAL) is the one MAP returns.
        Errno error = n == 0 ? Errno.None : _accounting.LockAcctLocked(dma, charge, async: false, charges);
        if (error != Errno.None)
        {
            // Nothing of the batch was charged or mapped: its chunks' pins go.
            if (pinError == Errno.None)
            {
                _batch.Release(_ctx.Machine, write, dma.Task.Pid);
            }
            for (int i = 0; i < n; i++)
            {
                if (!_chunkReserved[i])
                {
                    Gup.UnpinUserPages(_ctx.Machine, FramesOf(_chunkPhys[i], shift), write, dma.Task.Pid);
                }
            }
            return error;
        }
        // Every chunk taken advanced offset by its bytes: the batch's size without a loop over its chunks.
        ByteRange[] phys = _chunkPhys;
        ulong batchBytes = offset - dma.Size;
        error = _domains.MapChunksLocked(dma.IovaAt(dma.Size), phys.AsSpan(0, n), dma.Prot, out int mapped);
        ulong mappedBytes = mapped == n ? batchBytes : 0;
        for (int i = 0, m = mapped == n ? 0 : mapped; i < m; i++)
        {
            mappedBytes += phys[i].Size;
        }
        dma.Size += mappedBytes;
        if (error != Errno.None)
        {
            // The chunk the domains refused, and those after it, are unpinned and un-charged at once.
            ulong at = dma.Size;
            for (int i = mapped; i < n; i++)
            {
                ulong bytes = phys[i].Size;
                UnpinPagesRemoteLocked(dma, dma.RangeAt(at, bytes), FramesOf(phys[i], shift).First, doAccounting: true);
                at += bytes;
            }
            return error;
        }
        return pinError;
    }

    /// <summary>
    /// The chunks of a MAP batch that begin and end inside the GUP batch already pinned, appended from chunk
    /// <paramref name="n"/> on as <see cref="PinChunkLocked"/> would have made them (the same frames, reserved-ness,
    /// charges and limit checks, in the same order), without its per-chunk round trip: on memory shattered into 1-page
    /// runs a chunk is a page, and that round trip was most of <see cref="PinMapBatchLocked"/>'s ~10 % of a MAP+UNMAP
    /// profile (issue 16; docs/benchmarks.md). Stops, leaving the rest to <see cref="PinChunkLocked"/>, at a chunk that
    /// reaches the batch's end (a refill may continue it), at one whose limit check would refuse it (the refusal, its
    /// trace and its unwinding are <see cref="PinChunkLocked"/>'s), and does nothing where a chunk's pages are not all
    /// charged alike (external pins: <see cref="VfioDma.CountVpfns"/>), where a chunk is one page (disable_hugepages)
    /// and where a batch is one chunk (tracing, deferred accounting). Returns the chunks the batch holds now.
    /// </summary>
    private int TakeChunksWithinBatchLocked(VfioDma dma, AddressSpace mm, ulong limit, int maxChunks, int n, ref ulong offset, ref long charge,
        ref int charges)
    {
        _ctx.AssertLocked();
        if (maxChunks == 1 || n >= maxChunks || dma.VpfnCount != 0 || _ctx.Behavior.DisableHugepages)
        {
            return n;
        }
        ReadOnlySpan<PfnRun> runs = _batch.Unconsumed(out ulong skip);
        PhysicalMemory memory = _ctx.Machine.Memory;
        int shift = _ctx.PageShift;
        ulong npage = (dma.RequestedSize - offset) >> shift;
        int taken = 0;
        ulong takenPages = 0;
        // When the rest of the mapping passes the limit on top of what the chunks before it charge, so does every chunk
        // taken here (the check is monotone in the pages, and they take no more than the rest): one check instead of one
        // a chunk, which on memory shattered into 1-page runs was a call a page (~1 % of a MAP+UNMAP, issue 16). A MAP
        // that may cross the limit checks each chunk, so ENOMEM still falls on the chunk that crosses it.
        bool withinLimit = npage <= long.MaxValue - (ulong)charge && _accounting.WithinLimitLocked(dma, mm, charge + (long)npage, limit);
        if (withinLimit && !memory.HasReservedFrames)
        {
            n = TakeWholeRunsLocked(runs, skip, ref taken, n, maxChunks, ref npage, ref charge, ref charges, ref offset);
        }
        while (n < maxChunks && taken < runs.Length && npage > 0)
        {
            // One chunk from run `taken` (from page `from` of it): the runs that continue it physically, of its
            // reserved-ness, as far as the mapping's pages go.
            ulong from = taken == 0 ? skip : 0;
            Pfn first = runs[taken].First.Plus(from);
            bool rsvd = memory.IsReservedOrInvalid(first);
            ulong pages = 0;
            long lockAcct = 0;
            int end = taken;
            ulong endPages = 0;
            bool refused = false;
            while (true)
            {
                ulong left = runs[end].Count - (end == 0 ? skip : 0);
                ulong take = Math.Min(left, npage - pages);
                if (!rsvd)
                {
                    if (!withinLimit && _accounting.ExceedsLimitLocked(dma, mm, charge + lockAcct + (long)take, limit))
                    {
                        refused = true;
                        break;
                    }
                    lockAcct += (long)take;
                }
                pages += take;
                if (take < left)
                {
                    endPages = take;
                    break;
                }
                end++;
                if (pages == npage || end == runs.Length || runs[end].First != first.Plus(pages) || memory.IsReservedOrInvalid(runs[end].First) != rsvd)
                {
                    break;
                }
            }
            if (refused || (end == runs.Length && pages < npage))
            {
                break;
            }
            _chunkPhys[n] = ByteRange.FromStartSize(first.ToPhys(shift).Value, pages << shift);
            _chunkReserved[n] = rsvd;
            n++;
            charge += lockAcct;
            charges += lockAcct != 0 ? 1 : 0;
            offset += pages << shift;
            npage -= pages;
            takenPages = endPages;
            taken = end;
            if (endPages != 0)
            {
                // The mapping ends inside this run.
                break;
            }
        }
        if (taken != 0 || takenPages != 0)
        {
            _batch.ConsumeRuns(taken, takenPages);
        }
        return n;
    }

    /// <summary>
    /// <see cref="TakeChunksWithinBatchLocked"/>'s chunks where nothing can refuse them and no frame is PageReserved: from
    /// run <paramref name="taken"/> on, each run that neither continues physically into the next nor holds the mapping's
    /// last page is one chunk, reserved exactly where it lies outside RAM or is the zero frame (what
    /// <see cref="PhysicalMemory.IsReservedOrInvalid"/> answers while no frame is reserved), charged unless reserved. The
    /// last run of the batch (a refill may continue it) and whatever the loop declines are left to the caller's loop.
    /// Why a loop of its own: on memory shattered into 1-page runs a chunk is a page, and the general loop, which checks
    /// the limit, splits runs and joins them across reserved-ness, spilled its state to the stack at every chunk
    /// (issue 16; docs/benchmarks.md, 2026-12-07 "onepage6").
    /// </summary>
    private int TakeWholeRunsLocked(ReadOnlySpan<PfnRun> runs, ulong skip, ref int taken, int n, int maxChunks, ref ulong npage, ref long charge,
        ref int charges, ref ulong offset)
    {
        PhysicalMemory memory = _ctx.Machine.Memory;
        ulong frames = memory.FrameCount;
        ulong zero = memory.ZeroFrame is { } z ? z.Value : ulong.MaxValue;
        ByteRange[] chunks = _chunkPhys;
        bool[] reserved = _chunkReserved;
        int shift = _ctx.PageShift;
        int t = taken;
        int stop = (int)Math.Min((long)runs.Length - 1, (long)t + (maxChunks - n));
        ulong left = npage;
        long acct = 0;
        int accts = 0;
        while (t < stop)
        {
            ulong from = t == 0 ? skip : 0;
            ulong first = runs[t].First.Value + from;
            ulong count = runs[t].Count - from;
            if (count >= left || runs[t + 1].First.Value == first + count)
            {
                break;
            }
            bool rsvd = first >= frames || first == zero;
            chunks[n] = new ByteRange(first << shift, ((first + count) << shift) - 1);
            reserved[n] = rsvd;
            n++;
            if (!rsvd)
            {
                acct += (long)count;
                accts++;
            }
            left -= count;
            t++;
        }
        offset += (npage - left) << shift;
        npage = left;
        charge += acct;
        charges += accts;
        taken = t;
        return n;
    }

    // The frames of a chunk's physical range (page-aligned, as every chunk is).
    private static PfnRun FramesOf(ByteRange chunk, int shift) => new(new Pfn(chunk.Start >> shift), chunk.Size >> shift);

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
        _putPieces.Clear();
        ulong n = AppendPinned(first, count, _putPieces);
        Gup.UnpinUserPages(_ctx.Machine, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_putPieces), (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
        _putPieces.Clear();
        return n;
    }

    // put_pfn's test over [first, first + count): appends the pieces that were pinned (not reserved, invalid or the
    // zero frame) to `into` and returns their frames.
    private ulong AppendPinned(Pfn first, ulong count, List<PfnRun> into)
    {
        PhysicalMemory memory = _ctx.Machine.Memory;
        if (PinnedWhole(memory, first, count))
        {
            into.Add(new PfnRun(first, count));
            return count;
        }
        if (memory.ZeroFrame is { } zero && zero.Value - first.Value < count)
        {
            // The zero frame (reserved, one page per IOMMU chunk) may sit beside pinned frames that the unmap joined.
            ulong before = zero.Value - first.Value;
            return AppendPinned(first, before, into) + AppendPinned(zero.Plus(1), count - before - 1, into);
        }
        ulong frames = memory.FrameCount;
        if (count == 0 || first.Value >= frames || memory.IsReservedOrInvalid(first))
        {
            return 0;
        }
        ulong n = Math.Min(count, frames - first.Value);
        into.Add(new PfnRun(first, n));
        return n;
    }

    // Whether put_pfn's test keeps the piece whole: RAM frames, clear of the zero frame, the first not reserved
    // (AppendPinned then appends it as it is).
    private static bool PinnedWhole(PhysicalMemory memory, Pfn first, ulong count) =>
        InRamClearOfZero(first.Value, count, memory.FrameCount, memory.ZeroFrame is { } z ? z.Value : ulong.MaxValue) &&
        !memory.IsReservedOrInvalid(first);

    // PinnedWhole's test but for the reserved map: `count` frames from `first`, all below `frames` (RAM), none of them
    // `zero` (ulong.MaxValue: no zero frame). The streamed unmap's sink applies it per piece, the reserved map once a batch.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool InRamClearOfZero(ulong first, ulong count, ulong frames, ulong zero) =>
        count != 0 && first < frames && count <= frames - first && zero - first >= count;

    /// <summary>
    /// vfio_unmap_unpin: the mapping's translations leave every domain but the first (<see cref="DomainSet.UnmapOthersLocked"/>),
    /// then the first a batch at a time (<see cref="DomainSet.TryUnmapFirstBatchStreamedLocked"/>, each run read straight
    /// into the frames to unpin, or where that declines <see cref="DomainSet.UnmapFirstBatchLocked"/>: deferred
    /// invalidation, then flushed), and only then are the frames they translated unpinned, so no page is unpinned while a domain may still
    /// reach it (spec §3.5). With accounting the unpinned pages are un-charged and 0 is returned; otherwise their count.
    /// Nothing to do without a domain or a pinned part.
    /// </summary>
    /// <remarks>
    /// The IOMMU side is streamed in batches of <see cref="UnmapBatchRuns"/> runs (the kernel flushes every 512
    /// regions), so neither a list of the mapping's runs nor the domain's pending invalidations grow with the mapping:
    /// on memory shattered into 1-page runs those were 72 bytes a page of transient memory (140 MB per 4 GiB with the
    /// lists' slack, issue 16). The frames are unpinned after the last flush (or, where the pin map is dense, every
    /// few flushes), a large unmap's one-word pieces gathered as bits and unpinned in frame order (see the loop): a
    /// batch's frames are scattered over all of RAM and each update of the pin-count map in IOVA order was a cache
    /// miss, while in frame order each line of counts is met once. The kernel unpins each batch after its flush;
    /// unpinning later, still under the container's lock, ends in the same pins, charges and dirty bits.
    /// </remarks>
    public long UnmapUnpinLocked(VfioDma dma, bool doAccounting)
    {
        _ctx.AssertLocked();
        if (dma.Size == 0 || !_domains.HasDomainLocked)
        {
            return 0;
        }
        if (_ctx.OnePageLanes && _domains.TryUnmapOnlyRunLocked(dma, out PhysAddr onlyRun))
        {
            // The one-run lane (see UnpinOneRunLocked): one domain, the mapping one IOPTE run, gone with its flush. Off with
            // the other lanes (Type1TestHooks.UseBatchPathsForTest), so OnePageLaneTests hold it against the batch loop.
            long freed = (long)UnpinOneRunLocked(dma, Pfn.FromPhys(onlyRun, _ctx.PageShift), dma.Size >> _ctx.PageShift);
            dma.IommuMapped = false;
            if (doAccounting)
            {
                _accounting.LockAcctLocked(dma, -freed, async: true);
                return 0;
            }
            return freed;
        }
        _domains.UnmapOthersLocked(dma);
        List<MappedRun> runs = _unmapRuns;
        List<PfnRun> unpin = _unpin;
        PhysicalMemory memory = _ctx.Machine.Memory;
        unpin.Clear();
        // Anything left by an unmap that threw (a caller bug) is dropped, as the list's pieces are.
        if (!_unpinBits.IsEmpty)
        {
            _unpinBits.Release();
        }
        int shift = _ctx.PageShift;
        ulong cursor = dma.Iova.Value;
        long unlocked = 0;
        bool more = true;
        int checkAt = UnpinDensePieces;
        // The pieces of a large unmap (on average 16 frames or more per window of the host's frames) that lie in one
        // 64-frame word are gathered as bits instead (FrameBitSet), so that their pins drop and their dirty bits are
        // set in frame order, a window at a time, after the last flush: in IOVA order each piece of memory shattered
        // into 1-page runs was a random line of the pin map's counts (issue 16; docs/benchmarks.md, 2026-12-08
        // "onepage9"). Not while tracing (the unpin events come in the pieces' order) or while any frame is reserved
        // (put_pfn's reserved test is FilterPinnedLocked's, over the list); a small unmap (a 4 KiB one above all)
        // keeps the list and UnpinRun.
        FrameBitSet? bits = (dma.Size >> shift) >= (memory.FrameCount >> 8) && !memory.HasReservedFrames && !_ctx.Machine.Trace.Enabled
            ? _unpinBits : null;
        ulong bitsKept = 0;
        while (more)
        {
            // The fast lane: the first domain's runs come as frame pieces straight from its table's leaves, put_pfn's
            // test applied as they come (FrameSink); only a batch where some piece may be skipped goes through the
            // whole test again (FilterPinnedLocked). Where the domain declines, the batch takes the reference path: a
            // list of runs, each through put_pfn's test.
            int from = unpin.Count;
            var sink = new FrameSink(unpin, shift, memory.FrameCount, memory.ZeroFrame is { } z ? z.Value : ulong.MaxValue, bits);
            if (_domains.TryUnmapFirstBatchStreamedLocked(dma, ref cursor, UnmapBatchRuns, ref sink, out bool took, out more))
            {
                if (!took)
                {
                    break;
                }
                // The sink already applied put_pfn's test to each piece as it took it, all but the reserved map's part;
                // where a piece failed it or frames are reserved, the batch's pieces go through the whole test here.
                unlocked += (long)(sink.AllWhole && !memory.HasReservedFrames ? sink.Kept : sink.BitsKept + FilterPinnedLocked(unpin, from));
                bitsKept += sink.BitsKept;
            }
            else
            {
                if (!_domains.UnmapFirstBatchLocked(dma, ref cursor, UnmapBatchRuns, runs, out more))
                {
                    break;
                }
                foreach (MappedRun run in runs)
                {
                    unlocked += (long)AppendPinned(Pfn.FromPhys(run.Phys, shift), run.Iova.Size >> shift, unpin);
                }
                runs.Clear();
            }
            // Where the pin map is dense (memory shattered into runs of a page or two) unpinning takes frames in any
            // order at a direct index, so the flushed batches are unpinned as they come, as the kernel does after each
            // IOTLB sync: holding every frame of a 64 GiB unmap was 16 B per page of the peak. Elsewhere they wait
            // for one sorted pass over the pin map (one pass per flush was several times slower there). The counts
            // and dirty bits end the same either way, and nothing reads them until the unmap returns. Where every
            // sampled piece lands in a dense window (1-page runs) that is done every UnpinDensePieces; where only most
            // do (runs of 4 pages, some windows dense), every UnpinStreamPieces, since each flush re-merges the sparse
            // remainder; a check that finds neither doubles the count to the next.
            if (unpin.Count >= checkAt)
            {
                (int dense, int sampled) = memory.PinsDenseSample(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(unpin));
                if (dense == sampled || (unpin.Count >= UnpinStreamPieces && 2 * dense >= sampled))
                {
                    UnpinSortedLocked(dma, unpin);
                }
                else if (checkAt < UnpinStreamPieces)
                {
                    checkAt = Math.Min(checkAt * 2, UnpinStreamPieces);
                }
            }
        }
        if (bits is not null && !bits.IsEmpty && (memory.HasReservedFrames || _ctx.Machine.Trace.Enabled))
        {
            // Frames were reserved or tracing began since the unmap chose the bits: their pieces go to the list and
            // through put_pfn's whole test, as the list's own.
            unlocked -= (long)bitsKept;
            int from = unpin.Count;
            bits.DrainTo(unpin);
            unlocked += (long)FilterPinnedLocked(unpin, from);
        }
        UnpinSortedLocked(dma, unpin);
        if (bits is not null)
        {
            memory.UnpinFrameBits(bits, (dma.Prot & IommuProt.Write) != 0);
        }
        if (unpin.Capacity > UnpinKeep)
        {
            // A huge scattered unmap grew it: do not keep megabytes alive for the next 4 KiB unmap.
            _unpin = [];
        }
        dma.IommuMapped = false;
        if (doAccounting)
        {
            _accounting.LockAcctLocked(dma, -unlocked, async: true);
            return 0;
        }
        return unlocked;
    }

    // The frames of a mapping that was one IOPTE run of the only domain (UnmapUnpinLocked's one-run lane, every 4 KiB
    // unmap), unpinned as the batch loop would unpin its one piece: put_pfn's test (PinnedWhole, the sink's and
    // FilterPinnedLocked's) and one Gup.UnpinUserPages of the run, with the same pins, dirty bits and trace events; a
    // piece that fails the test goes through AppendPinned and UnpinSortedLocked, as there. Returns the frames unpinned.
    // Why a lane: for one run the batch loop's set-up (the list cleared and trimmed, the sink, the cursor, the dense
    // sample test, the join) cost more than the IOPTE removal it wraps (issue 16's pair; docs/benchmarks.md, pair10).
    private ulong UnpinOneRunLocked(VfioDma dma, Pfn first, ulong count)
    {
        _ctx.AssertLocked();
        PhysicalMemory memory = _ctx.Machine.Memory;
        bool write = (dma.Prot & IommuProt.Write) != 0;
        if (InRamClearOfZero(first.Value, count, memory.FrameCount, memory.ZeroFrame is { } z ? z.Value : ulong.MaxValue) &&
            (!memory.HasReservedFrames || !memory.IsReservedOrInvalid(first)))
        {
            var run = new PfnRun(first, count);
            Gup.UnpinUserPages(_ctx.Machine, new ReadOnlySpan<PfnRun>(in run), write, dma.Task.Pid);
            return count;
        }
        List<PfnRun> unpin = _unpin;
        unpin.Clear();
        ulong kept = AppendPinned(first, count, unpin);
        UnpinSortedLocked(dma, unpin);
        return kept;
    }

    // The streamed unmap's sink: each IOPTE run as the piece of frames it translated, appended as read (under the
    // domain's lock: a list append, no lock taken), with put_pfn's keep-whole test (PinnedWhole) applied as it goes but
    // for the reserved map, which the caller asks once per batch: RAM frames (`frames`), clear of the zero frame (`zero`,
    // read before the walk; a frame this mapping pins cannot become it). Kept counts the frames of the pieces that pass;
    // AllWhole says whether all did. Why: FilterPinnedLocked walked each batch's pieces again for the same test, 1.1-1.4 %
    // of a profile of 4 GiB on 1-page runs, plus its out-of-line PinnedWhole while tier 0 (issue 16; docs/benchmarks.md,
    // 2026-12-07 "onepage4": UNMAP's CPU time moved within the noise of the loaded machine).
    // Given `bits` (a large unmap, see UnmapUnpinLocked), a piece that passes the test and lies in one 64-frame word
    // goes there instead of the list, unless one of its frames is there already (a frame mapped twice: one pin each);
    // BitsKept counts its frames.
    private struct FrameSink(List<PfnRun> pieces, int shift, ulong frames, ulong zero, FrameBitSet? bits) : IUnmappedRunSink
    {
        public ulong Kept;
        public ulong BitsKept;
        public bool AllWhole = true;

        // Inlined into the walk: called once per page on shattered memory.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void Take(ulong iovaStart, ulong iovaLast, PhysAddr phys)
        {
            ulong first = phys.Value >> shift;
            ulong count = (iovaLast - iovaStart + 1) >> shift;
            if (InRamClearOfZero(first, count, frames, zero))
            {
                Kept += count;
                if (bits is not null && bits.TryAdd(first, count))
                {
                    BitsKept += count;
                    return;
                }
                pieces.Add(new PfnRun(new Pfn(first), count));
            }
            else
            {
                pieces.Add(new PfnRun(new Pfn(first), count));
                AllWhole = false;
            }
        }
    }

    // put_pfn's test (AppendPinned) over the pieces appended from index `from` on, in place: a piece of RAM frames, clear
    // of the zero frame, whose first frame is not reserved stays whole, as AppendPinned would append it; any other
    // piece sends the whole tail through AppendPinned again. Returns the frames kept.
    private ulong FilterPinnedLocked(List<PfnRun> pieces, int from)
    {
        _ctx.AssertLocked();
        PhysicalMemory memory = _ctx.Machine.Memory;
        Span<PfnRun> span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pieces)[from..];
        ulong kept = 0;
        foreach (PfnRun piece in span)
        {
            if (!PinnedWhole(memory, piece.First, piece.Count))
            {
                PfnRun[] raw = span.ToArray();
                pieces.RemoveRange(from, raw.Length);
                kept = 0;
                foreach (PfnRun r in raw)
                {
                    kept += AppendPinned(r.First, r.Count, pieces);
                }
                return kept;
            }
            kept += piece.Count;
        }
        return kept;
    }

    /// <summary>
    /// Unpins <paramref name="pieces"/> of pinned frames in one call, in IOVA order, physically adjacent neighbours
    /// joined (the pin counts and dirty bits end the same as unpinning them one by one). Not sorted by frame: where
    /// memory has shattered the frame maps are dense per window and take frames in any order, and the few runs that
    /// land in sparse windows are sorted by the map itself (PhysicalMemory.UnpinRuns, FrameCountMap); this sort was
    /// ~27 ns per page of a 1-page-run unmap (issue 16). Empties the list.
    /// </summary>
    private void UnpinSortedLocked(VfioDma dma, List<PfnRun> pieces)
    {
        _ctx.AssertLocked();
        Span<PfnRun> span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pieces);
        span = span[..PfnRun.JoinAdjacent(span)];
        Gup.UnpinUserPages(_ctx.Machine, span, (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
        pieces.Clear();
    }
}
