using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// The host's RAM as page frames: allocation for faults and huge pages, reserved frames, per-frame
/// reference and pin counts, dirty bits and sparse contents (the kernel's buddy allocator,
/// <c>struct page</c> refcount/pincount and <c>PageReserved</c>: the free set, the counts and the dirty bits as
/// <see cref="FrameCountMap"/>s, runs that turn into a direct per-frame index where memory has shattered).
/// </summary>
/// <remarks>
/// Lock: <c>_gate</c>, a leaf lock (nothing else is taken while it is held). It protects every
/// run map (<c>_free</c>, <c>_reserved</c>, <c>_refs</c>, <c>_pins</c>, <c>_dirty</c>), the content
/// chunks, the scattered-layout cursor and its block of the permutation computed ahead, and the pin totals. Never changing after construction:
/// <see cref="PageShift"/>, <see cref="FrameCount"/>, the layout and its permutation.
/// A frame is allocated while its reference count (mappings and owning objects) or its pin count
/// is non-zero; it returns to the free set, zeroed, when both reach zero.
/// </remarks>
internal sealed partial class PhysicalMemory
{
    private readonly OrderedLock _gate = new(LockRank.PhysicalMemory);
    // Free frames (count 1), as the counts below: a populate of shattered memory takes them one slot at a time in
    // random order, which left a run map of ~1 M runs at 4 GiB (13.6 B/page); dense windows are 2 B per frame of RAM.
    private readonly FrameCountMap _free = new();
    private readonly RunMap<Presence> _reserved = new();
    // The per-frame counts and the dirty bit: extents on contiguous memory, a direct index per window where memory has
    // shattered (FrameCountMap says why and when; the dirty bit's index is a bitmap, FrameFlagMap).
    private readonly FrameCountMap _refs = new();
    // The pin map keeps up to 1,024 emptied dense windows (8 MiB, the windows of 16 GiB of frames) for the next MAP's pins:
    // a MAP+UNMAP of memory shattered into 1-page runs made and dropped them every time (FrameCountMap.EmptyWindowsKept).
    private readonly FrameCountMap _pins = new() { EmptyWindowsKept = 1024 };
    private readonly FrameFlagMap _dirty = new();
    private readonly List<PfnRun> _released = [];
    // An upper bound on the frames that hold a pin and no reference (pinned, then unmapped by their process: only
    // DropRefs makes one, and ReleaseUnusedLocked counts them there; an unpin that frees one takes it off). While it is
    // zero, a frame whose last pin goes is still referenced and nothing is freed, so a batch unpin neither reads the
    // reference counts nor lists the frames that fell (UnpinRuns): on memory shattered into 1-page runs that read was a
    // third of UNMAP's per-frame cache misses (issue 16; docs/benchmarks.md, 2026-12-07 "onepage5"). AddRefs on such a
    // frame leaves the bound high, which costs only the read.
    private ulong _orphanPins;
    private readonly FrameLayout _layout;
    private readonly SlotPermutation? _slots;
    private readonly FaultInjector? _faults;
    private ulong _slotCursor;
    // The permutation from _slotBlockStart on, computed a block at a time (SlotPermutation.Fill) as the cursor reaches it.
    private const int SlotBlock = 256;
    private ulong[]? _slotBlock;
    private ulong _slotBlockStart;
    private int _slotBlockLength;
    // Sum of what FrameCountMap.Touch read: kept so the reads are not optimized away; means nothing.
    private ulong _touched;
    private ulong _freeFrames;
    // Frames ever marked PageReserved, written under _gate and read without it: while it is zero (every host
    // the scenarios build; only tests reserve frames) the reserved test is the range check alone. type1 asks
    // it two or three times per contiguous chunk it pins, maps and unpins, and on memory shattered into
    // 1-page runs, or in a 4 KiB map/unmap pair, each ask was a lock round trip (issue 16).
    private ulong _reservedFrames;

    /// <summary>Creates <paramref name="ramBytes"/> of RAM (rounded down to whole frames) starting at
    /// physical address 0, all free.</summary>
    public PhysicalMemory(int pageShift, ulong ramBytes, FrameLayout layout, FaultInjector? faults = null)
    {
        if (pageShift is not (12 or 14 or 16))
        {
            HostThrowHelper.ThrowArgument($"host PAGE_SIZE must be 4, 16 or 64 KiB, not 2^{pageShift}", nameof(pageShift));
        }
        PageShift = pageShift;
        FrameCount = ramBytes >> pageShift;
        if (FrameCount == 0)
        {
            HostThrowHelper.ThrowArgument("RAM must hold at least one frame", nameof(ramBytes));
        }
        _layout = layout;
        _faults = faults;
        _free.Set(0, FrameCount - 1, 1);
        _freeFrames = FrameCount;
        if (layout.Scattered)
        {
            _slots = new SlotPermutation((FrameCount + layout.RunPages - 1) / layout.RunPages, layout.Seed);
        }
    }

    /// <summary>log2 of the host PAGE_SIZE.</summary>
    public int PageShift { get; }

    /// <summary>The host PAGE_SIZE in bytes.</summary>
    public ulong PageSize => 1UL << PageShift;

    /// <summary>Frames of RAM; pfns <c>[0, FrameCount)</c> have a struct page.</summary>
    public ulong FrameCount { get; }

    /// <summary>Frames currently free.</summary>
    public ulong FreeFrameCount
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _freeFrames;
            }
        }
    }

    /// <summary>Whether the pfn is RAM that has a struct page (pfn_valid).</summary>
    public bool IsRam(Pfn pfn) => pfn.Value < FrameCount;

    /// <summary>True for pfns that type1 never pins or accounts: no struct page (outside RAM, e.g.
    /// MMIO), PageReserved, or the shared zero frame (the kernel's zero page is PageReserved).</summary>
    public bool IsReservedOrInvalid(Pfn pfn)
    {
        if (!IsRam(pfn) || IsZeroFrame(pfn))
        {
            return true;
        }
        if (Volatile.Read(ref _reservedFrames) == 0)
        {
            return false;
        }
        using (_gate.EnterScope())
        {
            return _reserved.TryGet(pfn.Value, out _);
        }
    }

    /// <summary>How many pfns of <c>[first, first + count)</c> are reserved or invalid (see
    /// <see cref="IsReservedOrInvalid"/>), counted run by run: what type1 never pins or charges in a range.</summary>
    public ulong CountReservedOrInvalid(Pfn first, ulong count)
    {
        if (count == 0)
        {
            return 0;
        }
        ulong last = first.Value + Math.Min(count - 1, ulong.MaxValue - first.Value);
        if (first.Value >= FrameCount)
        {
            return last - first.Value + 1;
        }
        ulong ramLast = Math.Min(last, FrameCount - 1);
        ulong n = last - ramLast;
        ulong zero = Volatile.Read(ref _zeroPfn);
        if (zero >= first.Value && zero <= ramLast)
        {
            n++;
        }
        if (Volatile.Read(ref _reservedFrames) == 0)
        {
            return n;
        }
        using (_gate.EnterScope())
        {
            foreach (Run<Presence> r in _reserved.Overlapping(first.Value, ramLast))
            {
                n += r.Span + 1;
            }
        }
        return n;
    }

    /// <summary>Marks free RAM frames PageReserved (firmware tables, the kernel image): they are never
    /// allocated. Frames already allocated cannot be reserved.</summary>
    public void Reserve(Pfn first, ulong count)
    {
        using (_gate.EnterScope())
        {
            ulong last = first.Value + count - 1;
            if (count == 0 || last >= FrameCount || !_free.Covers(first.Value, last))
            {
                HostThrowHelper.ThrowInvalidOperation($"reserve {first} +0x{count:x}: not free RAM");
            }
            _free.Set(first.Value, last, 0);
            _freeFrames -= count;
            _reserved.Set(first.Value, last, default);
            Volatile.Write(ref _reservedFrames, _reservedFrames + count);
        }
    }

    /// <summary>Allocates up to <paramref name="maxCount"/> physically contiguous frames following the
    /// layout, each with one reference owned by the caller. Returns false (ENOMEM) when RAM is
    /// exhausted or the <c>alloc</c> fault site fires. Freshly allocated frames read as zeros.</summary>
    public bool TryAllocateRun(ulong maxCount, out PfnRun run)
    {
        run = default;
        if (maxCount == 0)
        {
            return false;
        }
        using (_gate.EnterScope())
        {
            return TryAllocateRunLocked(maxCount, false, out run);
        }
    }

    /// <summary>Allocates frames for up to <paramref name="maxFrames"/> pages into <paramref name="runs"/>: exactly the
    /// runs, in order, that calling <see cref="TryAllocateRun"/> for what is still wanted would return one after the
    /// other (each asking the <c>alloc</c> fault site once), until <paramref name="maxFrames"/> are allocated,
    /// <paramref name="runs"/> is full or a call fails (<paramref name="failed"/>: ENOMEM); returns the runs written.
    /// One acquisition of the lock for all of them: a populate of memory shattered into 1-page runs allocates a run per
    /// page (issue 16).</summary>
    public int AllocateRuns(ulong maxFrames, Span<PfnRun> runs, out bool failed)
    {
        var sink = new SpanRunSink(runs);
        return AllocateRuns(maxFrames, ref sink, out failed);
    }

    /// <summary><see cref="AllocateRuns(ulong, Span{PfnRun}, out bool)"/> handing each run to <paramref name="sink"/> as
    /// it is allocated, until the sink has no <see cref="IFrameRunSink.Room"/> left, with the lock held throughout (the
    /// sink must take no lock). A populate passes a sink that writes the page table, so that a request of millions of
    /// runs needs no array of them; on 1-page scattered memory with the alloc fault site disarmed the runs are taken a
    /// large batch at a time (<see cref="AllocateSlotsInBulkLocked"/>).</summary>
    public int AllocateRuns<TSink>(ulong maxFrames, ref TSink sink, out bool failed)
        where TSink : IFrameRunSink, allows ref struct
    {
        failed = false;
        int n = 0;
        // Whether this request takes so many slots per window of RAM (more than a window holds as runs before it turns
        // dense) that every window it touches will shatter: then a window goes dense at its first take
        // (FrameCountMap.SetShattering says why). Only where slots never straddle a window edge (run_pages divides the
        // window): there the frames a slot yields do not depend on which windows are dense, while a slot across an edge
        // of a dense window is taken in two runs (FrameCountMap.TryGetFirstWithin), so densifying earlier than the maps
        // would on their own would change the runs handed out, and the alloc fault site's count with them.
        ulong windows = ((FrameCount - 1) >> FrameCountMap.WindowShift) + 1;
        bool shattering = _slots is not null && FrameCountMap.WindowFrames % _layout.RunPages == 0 &&
            maxFrames / _layout.RunPages > (ulong)_free.DenseAbove * windows;
        using (_gate.EnterScope())
        {
            if (_slots is not null && _layout.RunPages == 1 && !(_faults?.Armed ?? false))
            {
                n = AllocateSlotsInBulkLocked(ref maxFrames, ref sink, shattering);
            }
            while (sink.Room > 0 && maxFrames > 0)
            {
                if (!TryAllocateRunLocked(maxFrames, shattering, out PfnRun run))
                {
                    failed = true;
                    break;
                }
                sink.Add(run);
                n++;
                maxFrames -= run.Count;
            }
        }
        return n;
    }

    // Runs into a span (AllocateRuns' array form).
    private ref struct SpanRunSink(Span<PfnRun> runs) : IFrameRunSink
    {
        private readonly Span<PfnRun> _runs = runs;
        private int _n;

        public readonly int Room => _runs.Length - _n;

        public void Add(PfnRun run) => _runs[_n++] = run;
    }

    // The bulk populate: the fewest permutation positions examined at once (below this the per-run loop is as fast), and
    // the most (the slots of a batch are 8 bytes each while it is taken).
    private const int BulkMin = 4096;
    private const int BulkMax = 1 << 22;

    // AllocateRuns on 1-page slots with the alloc fault site disarmed, a batch of permutation positions at a time: the
    // batch's slots are marked in a bitmap over all slots, the free and reference maps are then read and written a
    // window at a time in frame order (FrameCountMap.SetFramesWhere: a slot is taken when its frame is free), and the
    // runs are handed out in permutation order. One slot is one frame, so each free slot is exactly the 1-frame run that
    // TryAllocateRunLocked would take at that position; a batch never holds more slots than frames are wanted or runs
    // fit, so no slot taken is one the per-run loop would not have taken; and the cursor is left where that loop leaves
    // it, at the last slot taken (a slot found taken is passed over only on the way to the next one taken). Whatever is
    // left (a batch too small for the bitmap to pay, the permutation used up) is the per-run loop's. On memory shattered
    // into 1-page runs the per-run loop spent most of a populate waiting for one random line of each map per frame, 37 MB
    // each at 72 GiB (issue 16; docs/benchmarks.md, 2026-12-07 "scenario").
    /// <summary>Frames taken by the bulk path so far (tests: that a case exercises it).</summary>
    internal ulong BulkTakenForTests { get; private set; }

    /// <summary>The most permutation positions one bulk batch examines: <see cref="BulkMax"/>, set lower by tests so that
    /// a small host takes several batches and computes each next one ahead on another thread.</summary>
    internal int BulkBatchForTests { get; set; } = BulkMax;

    /// <summary>Positions of the permutation a bulk batch found computed ahead (tests: that a case exercises it).</summary>
    internal ulong FilledAheadForTests { get; private set; }

    private unsafe int AllocateSlotsInBulkLocked<TSink>(ref ulong maxFrames, ref TSink sink, bool shattering)
        where TSink : IFrameRunSink, allows ref struct
    {
        _gate.AssertHeld();
        SlotPermutation perm = _slots!;
        ulong words = (perm.Count + 63) / 64;
        int n = 0;
        ulong scan = _slotCursor;
        // The batch's slots (up to 32 MiB) and the bitmap are native memory, given back when the call ends: as managed
        // arrays they stayed in the heap as garbage through the MAP_DMA that followed the populate and added their size
        // to the shattered-64g scenario's peak RSS.
        ulong* slots = null;
        ulong* spare = null;
        ulong* marks = null;
        // The next batch's positions, computed on another thread into `spare` while this one takes the current batch
        // (FillAhead): how many, and the task; null when none is under way.
        Task? ahead = null;
        int aheadLength = 0;
        Span<ushort> offsets = stackalloc ushort[(int)FrameCountMap.WindowFrames];
        try
        {
            while (_freeFrames > 0 && scan < perm.Count)
            {
                int k = (int)Math.Min(Math.Min((ulong)sink.Room, maxFrames), Math.Min(perm.Count - scan, (ulong)BulkBatchForTests));
                // The bitmap is scanned whole per batch: worth it only when the batch is not much smaller (so it is never
                // more than 16 M words, whatever the host: 2^38 slots of a 1 PiB host would be 2^32).
                if (!BulkPays(k, words))
                {
                    break;
                }
                if (slots is null)
                {
                    // k never grows from one batch to the next (the room, the frames wanted and the positions left only
                    // shrink), so the first batch's size holds every later one.
                    slots = (ulong*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)k, sizeof(ulong));
                    spare = (ulong*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)k, sizeof(ulong));
                    marks = (ulong*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)words, sizeof(ulong));
                }
                int have = 0;
                if (ahead is not null)
                {
                    // The positions from `scan` on, computed while the last batch was taken.
                    ahead.Wait();
                    ahead = null;
                    ulong* filled = spare;
                    spare = slots;
                    slots = filled;
                    have = Math.Min(aheadLength, k);
                    FilledAheadForTests += (ulong)have;
                }
                // The next batch, if it is as large as the frames still wanted after this one is all taken (as on a
                // first populate, where every slot is free) and large enough for the bulk path, starts on another
                // thread now; a next batch found larger (some slots of this one were taken already) computes the rest
                // itself, one found smaller uses a prefix. The positions are the same whichever thread computes them.
                ulong next = scan + (ulong)k;
                int expect = (int)Math.Min(Math.Min((ulong)(sink.Room - k), maxFrames - (ulong)k), Math.Min(perm.Count - next, (ulong)k));
                if (BulkPays(expect, words))
                {
                    aheadLength = expect;
                    ahead = FillAhead(perm, next, spare, expect);
                }
                var batch = new Span<ulong>(slots, k);
                var bits = new Span<ulong>(marks, (int)words);
                Fill(perm, scan, batch, have);
                foreach (ulong slot in batch)
                {
                    bits[(int)(slot >> 6)] |= 1UL << (int)(slot & 63);
                }
                ulong taken = TakeMarkedLocked(bits, offsets, shattering);
                int last = -1;
                for (int i = 0; i < k; i++)
                {
                    ulong slot = batch[i];
                    if (taken == (ulong)k || (bits[(int)(slot >> 6)] & (1UL << (int)(slot & 63))) != 0)
                    {
                        sink.Add(new PfnRun(new Pfn(slot), 1));
                        last = i;
                    }
                }
                bits.Clear();
                n += (int)taken;
                BulkTakenForTests += taken;
                _freeFrames -= taken;
                maxFrames -= taken;
                if (last >= 0)
                {
                    _slotCursor = scan + (ulong)last;
                }
                scan += (ulong)k;
            }
        }
        finally
        {
            // A fill ahead that the loop did not use (the request ended, RAM ran out) still writes into `spare`.
            ahead?.Wait();
            System.Runtime.InteropServices.NativeMemory.Free(slots);
            System.Runtime.InteropServices.NativeMemory.Free(spare);
            System.Runtime.InteropServices.NativeMemory.Free(marks);
        }
        return n;
    }

    // Whether a batch of k slots is worth the bulk path: the bitmap of `words` words is scanned whole per batch.
    private static bool BulkPays(int k, ulong words) => k >= BulkMin && (ulong)k >= words / 4;

    // The permutation's positions [start + from, start + slots.Length) into slots[from..], MaxFill at a time.
    private static void Fill(SlotPermutation perm, ulong start, Span<ulong> slots, int from)
    {
        for (int at = from; at < slots.Length; at += SlotPermutation.MaxFill)
        {
            int len = Math.Min(SlotPermutation.MaxFill, slots.Length - at);
            perm.Fill(start + (ulong)at, slots.Slice(at, len));
        }
    }

    // Fill of `length` positions from `start` into `into` on the thread pool. The machine the issue measures on has two
    // cores and a populate used one: computing the permutation (~16 ns a slot, a quarter of populating 64 GiB on 1-page
    // runs) beside the take of the batch before hides it (docs/benchmarks.md, 2026-12-07 "scenario2"). The permutation
    // is immutable and Fill writes only `into`, which nothing else touches until the task is waited for; a Wait on a task
    // not yet started runs it on the waiting thread, so a starved pool costs time, never a deadlock.
    private static unsafe Task FillAhead(SlotPermutation perm, ulong start, ulong* into, int length)
    {
        nint at = (nint)into;
        return Task.Run(() => Fill(perm, start, new Span<ulong>((ulong*)at, length), 0));
    }

    // Takes the free frames among the slots marked in `bits` (1-page slots: slot = frame), a window of the frame maps at a
    // time in frame order, and leaves marked only the slots taken; returns how many.
    private ulong TakeMarkedLocked(Span<ulong> bits, Span<ushort> offsets, bool shattering)
    {
        const int WordsPerWindow = (int)(FrameCountMap.WindowFrames / 64);
        ulong taken = 0;
        for (int w0 = 0; w0 < bits.Length; w0 += WordsPerWindow)
        {
            Span<ulong> window = bits.Slice(w0, Math.Min(WordsPerWindow, bits.Length - w0));
            int m = 0;
            for (int w = 0; w < window.Length; w++)
            {
                ulong word = window[w];
                while (word != 0)
                {
                    offsets[m++] = (ushort)((w * 64) + System.Numerics.BitOperations.TrailingZeroCount(word));
                    word &= word - 1;
                }
            }
            if (m == 0)
            {
                continue;
            }
            ulong index = (ulong)w0 / WordsPerWindow;
            Span<ushort> free = offsets[..m];
            int got = _free.SetFramesWhere(index, free, 1, 0, shattering);
            _refs.SetFramesWhere(index, free[..got], null, 1, shattering);
            if (got != m)
            {
                window.Clear();
                foreach (ushort o in free[..got])
                {
                    window[o >> 6] |= 1UL << (o & 63);
                }
            }
            taken += (ulong)got;
        }
        return taken;
    }

    private bool TryAllocateRunLocked(ulong maxCount, bool shattering, out PfnRun run)
    {
        _gate.AssertHeld();
        run = default;
        if (_faults?.ShouldFail(FaultSite.Alloc) ?? false)
        {
            return false;
        }
        if (_freeFrames == 0)
        {
            return false;
        }
        ulong start;
        ulong last;
        if (_slots is not null && TryNextScatteredLocked(out Run<FrameCount> slotRun))
        {
            start = slotRun.Start;
            last = slotRun.Last;
        }
        else
        {
            _free.TryGetAtOrAfter(0, out Run<FrameCount> lowest);
            start = lowest.Start;
            last = lowest.Last;
        }
        ulong count = Math.Min(maxCount, last - start + 1);
        TakeLocked(start, count, shattering);
        run = new PfnRun(new Pfn(start), count);
        return true;
    }

    /// <summary>Allocates one naturally aligned, physically contiguous block of
    /// <paramref name="frames"/> frames (a hugetlb page: 2 MiB or 1 GiB), lowest address first, with
    /// one reference owned by the caller. False (ENOMEM) when no aligned free block exists.</summary>
    public bool TryAllocateHuge(ulong frames, out Pfn first) => TryAllocateBlock(frames, frames, out first);

    /// <summary>Allocates <paramref name="frames"/> physically contiguous frames whose first pfn is a
    /// multiple of <paramref name="alignFrames"/> (a power of two), lowest address first, with one
    /// reference owned by the caller; false (ENOMEM) when no such free block exists.</summary>
    public bool TryAllocateBlock(ulong frames, ulong alignFrames, out Pfn first)
    {
        first = default;
        System.Diagnostics.Debug.Assert(frames != 0 && alignFrames != 0 && (alignFrames & (alignFrames - 1)) == 0);
        if (_faults?.ShouldFail(FaultSite.Alloc) ?? false)
        {
            return false;
        }
        using (_gate.EnterScope())
        {
            foreach (Run<FrameCount> r in _free.All())
            {
                ulong aligned = (r.Start + alignFrames - 1) & ~(alignFrames - 1);
                if (aligned >= r.Start && aligned <= r.Last && r.Last - aligned + 1 >= frames)
                {
                    TakeLocked(aligned, frames);
                    first = new Pfn(aligned);
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Adds one reference to each frame of the run (a new mapping of an allocated frame).</summary>
    public void AddRefs(PfnRun run)
    {
        using (_gate.EnterScope())
        {
            AssertAllocatedLocked(run, "get_page");
            _refs.Adjust(run.First.Value, run.Last.Value, +1, null, out _, out _);
        }
    }

    /// <summary>Drops one reference from each frame of the run; frames left with no reference and
    /// no pin are freed (put_page).</summary>
    public void DropRefs(PfnRun run)
    {
        using (_gate.EnterScope())
        {
            _refs.Adjust(run.First.Value, run.Last.Value, -1, _released, out _, out _);
            ReleaseUnusedLocked(_released, _pins);
        }
    }

    /// <summary>The reference count of a frame (mappings plus owning objects, pins excluded).</summary>
    public ulong RefCount(Pfn pfn)
    {
        using (_gate.EnterScope())
        {
            return _refs.CountAt(pfn.Value);
        }
    }

    /// <summary>Length of the prefix of <c>[first, first + count)</c> whose frames all have exactly one
    /// reference (<paramref name="exclusive"/> true) or all have more (false): the COW reuse test of
    /// do_wp_page, run by run.</summary>
    public ulong ExclusivePrefix(Pfn first, ulong count, out bool exclusive)
    {
        using (_gate.EnterScope())
        {
            _refs.TryGetValue(first.Value, out FrameCount c);
            exclusive = c.Count <= 1;
            ulong len = 0;
            foreach (Run<FrameCount> r in _refs.Overlapping(first.Value, first.Value + count - 1))
            {
                if (r.Start != first.Value + len || (r.Value.Count <= 1) != exclusive)
                {
                    break;
                }
                len += r.Span + 1;
            }
            return Math.Max(len, 1);
        }
    }

    private bool TryNextScatteredLocked(out Run<FrameCount> run)
    {
        _gate.AssertHeld();
        while (_slotCursor < _slots!.Count)
        {
            ulong slot = SlotAtCursorLocked();
            ulong start = slot * _layout.RunPages;
            ulong last = Math.Min(start + _layout.RunPages - 1, FrameCount - 1);
            if (_free.TryGetFirstWithin(start, last, out ulong first, out ulong end))
            {
                run = new Run<FrameCount>(first, end, default);
                return true;
            }
            _slotCursor++;
        }
        run = default;
        return false;
    }

    // The slot at the cursor, from a block of the permutation computed ahead (SlotBlock positions from _slotBlockStart).
    private ulong SlotAtCursorLocked()
    {
        ulong at = _slotCursor - _slotBlockStart;
        if (_slotBlock is null || at >= (ulong)_slotBlockLength)
        {
            _slotBlock ??= new ulong[SlotBlock];
            _slotBlockStart = _slotCursor;
            _slotBlockLength = (int)Math.Min(SlotBlock, _slots!.Count - _slotCursor);
            ReadOnlySpan<ulong> block = _slotBlock.AsSpan(0, _slotBlockLength);
            _slots.Fill(_slotCursor, _slotBlock.AsSpan(0, _slotBlockLength));
            // The block's lines of the free and reference maps fetched side by side (FrameCountMap.Touch says why).
            _touched += _free.Touch(block, _layout.RunPages) + _refs.Touch(block, _layout.RunPages);
            at = 0;
        }
        return _slotBlock[at];
    }

    // Takes free frames [start, start + count) with one reference each; `shattering`: a populate that will shatter
    // every window it touches (see AllocateRuns).
    private void TakeLocked(ulong start, ulong count, bool shattering = false)
    {
        _gate.AssertHeld();
        ulong last = start + count - 1;
        if (shattering)
        {
            _free.SetShattering(start, last, 0);
            _refs.SetShattering(start, last, 1);
        }
        else
        {
            _free.Set(start, last, 0);
            _refs.Set(start, last, 1);
        }
        _freeFrames -= count;
    }

    /// <summary>Checks the representation of the free, reference, pin and dirty maps (tests).</summary>
    internal void AssertFrameMapsValidForTests()
    {
        using (_gate.EnterScope())
        {
            _free.AssertValid();
            _refs.AssertValid();
            _pins.AssertValid();
            _dirty.AssertValid();
        }
    }

    private void AssertAllocatedLocked(PfnRun run, string op)
    {
        _gate.AssertHeld();
        if (run.Count == 0 || run.Last.Value >= FrameCount || _free.Overlaps(run.First.Value, run.Last.Value))
        {
            HostThrowHelper.ThrowInvalidOperation($"{op} {run}: not allocated RAM");
        }
    }

    // Frees the parts of the _released segments that have no count left in `other`. The common cases (an unmap's
    // frames still mapped by the process, or freed whole) are one test each: on shattered memory a walk of `other` per
    // 1-page segment was 8 % of a MAP+UNMAP (issue 16). Keeps _orphanPins: frames whose last reference went and that
    // stay pinned (`other` is the pin map) join it, frames whose last pin went and that are freed (`other` is the
    // reference map: they had none) leave it.
    private void ReleaseUnusedLocked(List<PfnRun> released, FrameCountMap other)
    {
        _gate.AssertHeld();
        ulong fell = 0;
        ulong freed = 0;
        foreach (PfnRun seg in released)
        {
            ulong next = seg.First.Value;
            ulong last = seg.Last.Value;
            fell += seg.Count;
            if (other.NoneZero(next, last))
            {
                continue;
            }
            foreach (Run<FrameCount> r in other.Overlapping(next, last))
            {
                if (r.Start > next)
                {
                    FreeLocked(next, r.Start - next);
                    freed += r.Start - next;
                }
                next = r.Last + 1;
            }
            if (next <= last)
            {
                FreeLocked(next, last - next + 1);
                freed += last - next + 1;
            }
        }
        released.Clear();
        if (ReferenceEquals(other, _pins))
        {
            _orphanPins += fell - freed;
        }
        else
        {
#if DEBUG
            if (freed > _orphanPins)
            {
                HostThrowHelper.ThrowInvalidOperation($"{freed} frames freed by their last unpin, {_orphanPins} pinned without a reference");
            }
#endif
            _orphanPins -= Math.Min(freed, _orphanPins);
        }
    }

    private void FreeLocked(ulong start, ulong count)
    {
        _gate.AssertHeld();
        ulong last = start + count - 1;
        ClearContentsLocked(start, count);
        _dirty.Clear(start, last);
        _free.Set(start, last, 1);
        _freeFrames += count;
    }
}
