using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

// Pin counts (FOLL_PIN's GUP_PIN_COUNTING_BIAS, as a plain count per frame) and dirty bits.
internal sealed partial class PhysicalMemory
{
    private ulong _pinnedFrames;
    private ulong _totalPins;


    /// <summary>Distinct frames with at least one pin (the scenario check <c>pinned_pages</c>).</summary>
    public ulong PinnedFrameCount
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _pinnedFrames;
            }
        }
    }

    /// <summary>Outstanding pins summed over all frames; zero when everything is unpinned.</summary>
    public ulong TotalPins
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _totalPins;
            }
        }
    }

    /// <summary>Adds one pin to each of <paramref name="count"/> frames from <paramref name="first"/>
    /// (what pin_user_pages does to each page it returns). The frames must be allocated RAM that is
    /// not reserved; pinning anything else is a bug in the caller.</summary>
    public void Pin(Pfn first, ulong count)
    {
        if (count == 0)
        {
            return;
        }
        using (_gate.EnterScope())
        {
            PinLocked(new PfnRun(first, count));
        }
    }

    /// <summary>Whether any frame is PageReserved (<see cref="IsReservedOrInvalid"/> then asks the reserved map under the
    /// gate): where none is, a run of RAM frames clear of the zero frame is not reserved, which a caller can tell without
    /// the gate (the streamed unmap's put_pfn test, DmaPinning; the checker's frame pass, where
    /// <see cref="CountReservedOrInvalid"/> then counts only frames outside RAM and the shared zero frame).</summary>
    public bool HasReservedFrames => Volatile.Read(ref _reservedFrames) != 0;

    /// <summary><see cref="Pin"/> for each of <paramref name="runs"/> under one acquisition of the gate: what one GUP
    /// call pins (on memory shattered into 1-page runs, a lock round trip per run was a good part of a pin's cost,
    /// issue 16). Entries of the shared zero frame, which is never pinned, are skipped.</summary>
    public void PinRuns(ReadOnlySpan<PfnRun> runs)
    {
        if (runs.IsEmpty)
        {
            return;
        }
        ulong zero = Volatile.Read(ref _zeroPfn);
        using (_gate.EnterScope())
        {
            if (runs.Length == 1)
            {
                if (runs[0].Count != 0 && runs[0].First.Value != zero)
                {
                    PinLocked(runs[0]);
                }
                return;
            }
            // In GUP's (virtual) order, unsorted: where memory has shattered the pin map's windows are dense and a pin is
            // an array write in any order; only the runs that land in sparse windows are sorted, by the map, for one
            // pass over its leaves (FrameCountMap). Sorting the whole refill here was 9.5 % of a MAP+UNMAP (issue 16).
            // The frames are summed by the scan that finds the pinnable runs: a second pass over a refill of up to 1 MiB of
            // runs, larger than this machine's 512 KiB L2, only to sum them (issue 16, docs/benchmarks.md "onepage6").
            PfnRun[]? kept = Pinnable(runs, zero, out int n, out ulong frames);
            ReadOnlySpan<PfnRun> batch = kept is null ? runs : kept.AsSpan(0, n);
#if DEBUG
            foreach (PfnRun run in batch)
            {
                DebugAssertPinnableLocked(run);
            }
#endif
            // Where the references are dense (memory shattered when it was allocated) the pins of a large batch go dense
            // early (FrameCountMap.AddRuns).
            _pinnedFrames += _pins.AddRuns(batch, shatteredLike: _refs);
            _totalPins += frames;
            if (kept is not null)
            {
                System.Buffers.ArrayPool<PfnRun>.Shared.Return(kept);
            }
        }
    }

    private void PinLocked(PfnRun run)
    {
        DebugAssertPinnableLocked(run);
        if (run.Count == 1)
        {
            // One frame (a 4 KiB map's): one insert of the pin map, without Adjust's segment walk (FrameCountMap.AddOne).
            _pinnedFrames += _pins.AddOne(run.First.Value) ? 1UL : 0;
            _totalPins++;
            return;
        }
        _pins.Adjust(run.First.Value, run.Last.Value, +1, null, out ulong risen, out _);
        _pinnedFrames += risen;
        _totalPins += run.Count;
    }

    // A caller bug, not a user error: checked in debug builds (every test run), skipped in the hot path of
    // release builds, where it cost a descent of the free map per pinned run.
    [System.Diagnostics.Conditional("DEBUG")]
    private void DebugAssertPinnableLocked(PfnRun run)
    {
        _gate.AssertHeld();
        AssertAllocatedLocked(run, "pin");
        if (_reserved.Overlaps(run.First.Value, run.Last.Value))
        {
            HostThrowHelper.ThrowInvalidOperation($"pin {run}: reserved frames are never pinned");
        }
    }

    /// <summary>Drops one pin from each frame (unpin_user_pages, or unpin_user_pages_dirty_lock when
    /// <paramref name="markDirty"/>); a frame with no pin and no reference left is freed. Never fails:
    /// unpinning a frame that holds no pin is a bug in the caller and throws.</summary>
    public void Unpin(Pfn first, ulong count, bool markDirty = false)
    {
        if (count == 0)
        {
            return;
        }
        using (_gate.EnterScope())
        {
            UnpinLocked(new PfnRun(first, count), markDirty);
            ReleaseUnusedLocked(_released, _refs);
        }
    }

    /// <summary><see cref="Unpin"/> for each of <paramref name="runs"/> under one acquisition of the gate, the frames
    /// left unused freed once at the end: what one batch of an unmap unpins (issue 16, as for <see cref="PinRuns"/>), in
    /// any order. Entries of the shared zero frame, never pinned, are skipped. A frame with no pin is a bug in the
    /// caller, as in <see cref="Unpin"/>: the rest of the batch is applied first and the model left consistent (the
    /// counters match the map), then it throws.</summary>
    public void UnpinRuns(ReadOnlySpan<PfnRun> runs, bool markDirty)
    {
        if (runs.IsEmpty)
        {
            return;
        }
        ulong zero = Volatile.Read(ref _zeroPfn);
        using (_gate.EnterScope())
        {
            PfnRun[]? kept = Pinnable(runs, zero, out int n, out _);
            try
            {
                ReadOnlySpan<PfnRun> batch = kept is null ? runs : kept.AsSpan(0, n);
                if (batch.Length > 1 && MostlySparse(batch))
                {
                    // Most of the batch goes to the pin map's runs (memory in runs of several pages, or contiguous),
                    // sorted. Sort it once here and join what is physically adjacent (an unmap's frames in IOVA order,
                    // 16-page runs at 8/9 occupancy: many neighbours), so the pin and dirty maps each take it in order
                    // without sorting their own copies (measured: UNMAP of 64 GiB in 16-page runs 0.14 s with the join,
                    // 0.24 s without; 4 GiB in 4-page runs, where a few windows are dense, 0.05 s against 0.08 s).
                    kept ??= CopyOf(batch);
                    n = SortJoined(kept.AsSpan(0, batch.Length));
                    batch = kept.AsSpan(0, n);
                }
                if (markDirty)
                {
                    // Before the pins drop (the marks do not depend on them): a window whose pins are dense takes its
                    // dirty bits dense at once, which it can only tell while the pins are there.
                    _dirty.MarkRuns(batch, denseLike: _pins);
                }
                // Frames still referenced (mapped by the process) are left out of _released as they fall: nothing to free.
                List<PfnRun>? released = ReleasedIfOrphansLocked;
                _pins.DropRuns(batch, released, out ulong fallen, out ulong dropped, out ulong missing, heldBy: released is null ? null : _refs);
                _pinnedFrames -= fallen;
                _totalPins -= dropped;
                ReleaseUnusedLocked(_released, _refs);
                if (missing != ulong.MaxValue)
                {
                    foreach (PfnRun run in batch)
                    {
                        if (missing >= run.First.Value && missing <= run.Last.Value)
                        {
                            HostThrowHelper.ThrowInvalidOperation($"unpin {run}: frame not pinned");
                        }
                    }
                }
            }
            finally
            {
                if (kept is not null)
                {
                    System.Buffers.ArrayPool<PfnRun>.Shared.Return(kept);
                }
            }
        }
    }

    /// <summary><see cref="UnpinRuns"/> of every frame held in <paramref name="frames"/> (none the shared zero frame,
    /// none named twice), window by window in frame order, and empties the set: the same pins, dirty bits, freed frames
    /// and counters, and the same throw after the rest is applied for a frame with no pin. Where the pin map is dense a
    /// window's pins drop upward through its counts (<see cref="FrameCountMap.TryDropBits"/>) and its dirty bits are set
    /// a word at a time (<see cref="FrameFlagMap.MarkBits"/>); the windows whose pins are runs go as runs, already in
    /// frame order and joined, through the batch passes a <see cref="StreamRuns"/> at a time. What an UNMAP of
    /// shattered memory unpins (issue 16; <see cref="FrameBitSet"/> says why).</summary>
    public void UnpinFrameBits(FrameBitSet frames, bool markDirty)
    {
        if (frames.IsEmpty)
        {
            return;
        }
        using (_gate.EnterScope())
        {
            List<PfnRun>? released = ReleasedIfOrphansLocked;
            FrameCountMap? heldBy = released is null ? null : _refs;
            ulong fallen = 0;
            ulong dropped = 0;
            ulong missing = ulong.MaxValue;
            PfnRun[]? runs = null;
            int n = 0;
            try
            {
                foreach ((ulong window, ulong[] words) in frames)
                {
                    if (_pins.IsDenseWindow(window))
                    {
                        if (markDirty)
                        {
                            // Before the pins drop, as UnpinRuns: the pins' density is what makes the dirty window dense.
                            _dirty.MarkBits(window, words);
                        }
                        _pins.TryDropBits(window, words, released, heldBy, ref fallen, ref dropped, ref missing);
                        continue;
                    }
                    runs ??= System.Buffers.ArrayPool<PfnRun>.Shared.Rent(StreamRuns + 64 * 64);
                    n = AppendBitRuns(window, words, runs, n);
                    if (n >= StreamRuns)
                    {
                        UnpinSortedRunsLocked(runs.AsSpan(0, n), markDirty, released, heldBy, ref fallen, ref dropped, ref missing);
                        n = 0;
                    }
                }
                if (n > 0)
                {
                    UnpinSortedRunsLocked(runs.AsSpan(0, n), markDirty, released, heldBy, ref fallen, ref dropped, ref missing);
                }
            }
            finally
            {
                if (runs is not null)
                {
                    System.Buffers.ArrayPool<PfnRun>.Shared.Return(runs);
                }
                frames.Release();
            }
            _pinnedFrames -= fallen;
            _totalPins -= dropped;
            ReleaseUnusedLocked(_released, _refs);
            if (missing != ulong.MaxValue)
            {
                HostThrowHelper.ThrowInvalidOperation($"unpin {new PfnRun(new Pfn(missing), 1)}: frame not pinned");
            }
        }
    }

    // Runs a bit set's sparse windows are unpinned in at a time (UnpinFrameBits): 256 KiB of them, inside the L2, as
    // DmaPinning's flush of dense pieces.
    private const int StreamRuns = 16384;

    // Window `window`'s set bits as runs appended at runs[n..] (adjacent frames joined, also across words, and onto the
    // last run when it ends right before). The new count.
    private static int AppendBitRuns(ulong window, ulong[] words, PfnRun[] runs, int n)
    {
        ulong ws = window << FrameCountMap.WindowShift;
        for (int w = 0; w < words.Length; w++)
        {
            ulong word = words[w];
            while (FrameBitSet.TakeLowestRun(ref word, out int b, out int len))
            {
                ulong first = ws + (ulong)((64 * w) + b);
                if (n > 0 && runs[n - 1].First.Value + runs[n - 1].Count == first)
                {
                    runs[n - 1] = runs[n - 1] with { Count = runs[n - 1].Count + (ulong)len };
                }
                else
                {
                    runs[n++] = new PfnRun(new Pfn(first), (ulong)len);
                }
            }
        }
        return n;
    }

    // UnpinRuns' two passes over runs sorted by frame and disjoint, the totals added to the caller's.
    private void UnpinSortedRunsLocked(ReadOnlySpan<PfnRun> runs, bool markDirty, List<PfnRun>? released, FrameCountMap? heldBy,
        ref ulong fallen, ref ulong dropped, ref ulong missing)
    {
        if (markDirty)
        {
            _dirty.MarkRuns(runs, denseLike: _pins);
        }
        _pins.DropRuns(runs, released, out ulong f, out ulong d, out ulong m, heldBy);
        fallen += f;
        dropped += d;
        missing = Math.Min(missing, m);
    }

    // Where an unpin collects the frames it lets go, to free those no longer referenced: nowhere (null) while no pinned
    // frame has lost its last reference (_orphanPins is 0), for then every frame whose last pin goes is still referenced,
    // nothing can be freed, and the unpin reads no reference count. That read was a third of UNMAP's random per-frame
    // reads on 1-page runs (UnpinRuns) and a descent of the reference map per 4 KiB unmap (UnpinRun, issue 16's pair;
    // docs/benchmarks.md, 2026-12-07 onepage5 and pair6).
    private List<PfnRun>? ReleasedIfOrphansLocked => _orphanPins != 0 ? _released : null;

    /// <summary>
    /// <see cref="UnpinRuns"/> of one run (a 4 KiB unmap's one frame, any unmap whose frames join into one run), with the
    /// same pins, dirty bits, freed frames and counters: the pins drop through one update of the pin map
    /// (<see cref="FrameCountMap.Adjust"/>) instead of the batch machinery (<see cref="FrameCountMap.DropRuns"/> and
    /// <see cref="FrameCountMap.MarkRuns"/> each rent a buffer from the shared array pool, a thread-local lookup, and
    /// sort and merge one run: ~15 % of issue 16's 4 KiB pair, docs/benchmarks.md 2026-12-07 pair3), and a frame already
    /// dirty is not set again. A run that is not wholly pinned is a caller bug, which <see cref="UnpinRuns"/> reports
    /// after applying the rest: it is handed to <see cref="UnpinRuns"/> so that both end alike.
    /// </summary>
    public void UnpinRun(PfnRun run, bool markDirty)
    {
        ulong zero = Volatile.Read(ref _zeroPfn);
        if (run.Count == 0 || run.First.Value == zero)
        {
            return;
        }
        ulong first = run.First.Value;
        ulong last = run.Last.Value;
        using (_gate.EnterScope())
        {
            List<PfnRun>? released = ReleasedIfOrphansLocked;
            // One frame holding one pin in a sparse window (every 4 KiB unmap on unshattered memory): the lookup that
            // finds the pin is the coverage check, and the pin goes in the same breath (two descents, not four).
            bool only = run.Count == 1 && _pins.TryDropOnlyCount(first, released);
            if (only || _pins.Covers(first, last))
            {
                if (markDirty)
                {
                    _dirty.SetUnlessAllSet(first, last);
                }
                ulong fallen = 1;
                if (!only)
                {
                    _pins.Adjust(first, last, -1, released, out _, out fallen);
                }
                _pinnedFrames -= fallen;
                _totalPins -= run.Count;
                if (released is not null)
                {
                    ReleaseUnusedLocked(released, _refs);
                }
                return;
            }
        }
        UnpinRuns([run], markDirty);
    }

    /// <summary>Of a sample of <paramref name="runs"/> (every 16th), how many land in dense windows of the pin map, where
    /// an unpin takes frames in any order at a direct index, and how many were looked at: where most do, an unmap can
    /// unpin as it goes, as the kernel does after each IOTLB flush, instead of holding every frame of a huge unmap for
    /// one sorted pass (issue 16's peak memory); where all do, it can do so often (DmaPinning.UnmapUnpinLocked).</summary>
    public (int Dense, int Sampled) PinsDenseSample(ReadOnlySpan<PfnRun> runs)
    {
        if (runs.IsEmpty)
        {
            return (0, 0);
        }
        using (_gate.EnterScope())
        {
            return DenseSampleLocked(runs);
        }
    }

    // Whether under half of a sample of the batch (every 16th run) lands in a dense window of the pin map.
    private bool MostlySparse(ReadOnlySpan<PfnRun> batch)
    {
        (int dense, int sampled) = DenseSampleLocked(batch);
        return 2 * dense < sampled;
    }

    // Of every 16th run, how many land in a dense window of the pin map, of how many looked at (none of one, without a
    // look, while no window is dense).
    private (int Dense, int Sampled) DenseSampleLocked(ReadOnlySpan<PfnRun> runs) =>
        _pins.DenseWindowCount == 0 ? (0, 1) : _pins.SampleDense(runs, 16);

    private static PfnRun[] CopyOf(ReadOnlySpan<PfnRun> runs)
    {
        PfnRun[] copy = System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length);
        runs.CopyTo(copy);
        return copy;
    }

    // Sorts runs by frame (unless in order) and joins physically adjacent ones; the number left.
    private static int SortJoined(Span<PfnRun> span)
    {
        FrameRunSort.SortUnlessOrdered(span);
        return PfnRun.JoinAdjacent(span);
    }

    // The runs without empty entries and the shared zero frame (never pinned) in a rented array, or null when every run
    // is kept: no copy of a million-run unmap batch in the common case.
    // The frames of the runs kept in `frames`.
    private static PfnRun[]? Pinnable(ReadOnlySpan<PfnRun> runs, ulong zero, out int n, out ulong frames)
    {
        n = runs.Length;
        frames = 0;
        int i = 0;
        while (i < runs.Length && runs[i].Count != 0 && runs[i].First.Value != zero)
        {
            frames += runs[i].Count;
            i++;
        }
        if (i == runs.Length)
        {
            return null;
        }
        PfnRun[] kept = System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length);
        runs[..i].CopyTo(kept);
        n = i;
        foreach (PfnRun run in runs[i..])
        {
            if (run.Count != 0 && run.First.Value != zero)
            {
                kept[n++] = run;
                frames += run.Count;
            }
        }
        return kept;
    }

    // Drops the pins; the frames that lost their last one are appended to _released for the caller to free.
    private void UnpinLocked(PfnRun run, bool markDirty)
    {
        _gate.AssertHeld();
        ulong first = run.First.Value;
        ulong last = run.Last.Value;
        if (!_pins.Covers(first, last))
        {
            HostThrowHelper.ThrowInvalidOperation($"unpin {run}: frame not pinned");
        }
        if (markDirty)
        {
            _dirty.Set(first, last);
        }
        _pins.Adjust(first, last, -1, _released, out _, out ulong fallen);
        _pinnedFrames -= fallen;
        _totalPins -= run.Count;
    }

    /// <summary>The pin count of a frame (0 for frames outside RAM).</summary>
    public ulong PinCount(Pfn pfn)
    {
        using (_gate.EnterScope())
        {
            return _pins.CountAt(pfn.Value);
        }
    }

    /// <summary>The lowest pin count over <c>[first, first + count)</c>, run by run (0 if any frame has none).</summary>
    public ulong MinPinCount(Pfn first, ulong count)
    {
        if (count == 0)
        {
            return 0;
        }
        using (_gate.EnterScope())
        {
            ulong last = first.Value + count - 1;
            ulong next = first.Value;
            ulong min = ulong.MaxValue;
            foreach (Run<FrameCount> r in _pins.Overlapping(first.Value, last))
            {
                if (r.Start != next)
                {
                    return 0;
                }
                min = Math.Min(min, r.Value.Count);
                next = r.Last + 1;
            }
            return next <= last ? 0 : min;
        }
    }

    /// <summary>Length of the prefix of <c>[first, first + count)</c> whose frames are all pinned
    /// (<paramref name="pinned"/> true) or all unpinned: fork's page_needs_cow_for_dma test, run by run.</summary>
    public ulong PinnedPrefix(Pfn first, ulong count, out bool pinned)
    {
        using (_gate.EnterScope())
        {
            pinned = _pins.TryGet(first.Value, out Run<FrameCount> r);
            if (pinned)
            {
                ulong len = 0;
                foreach (Run<FrameCount> p in _pins.Overlapping(first.Value, first.Value + count - 1))
                {
                    if (p.Start != first.Value + len)
                    {
                        break;
                    }
                    len += p.Span + 1;
                }
                return len;
            }
            return _pins.TryGetAtOrAfter(first.Value, out r) && r.Start - first.Value < count
                ? r.Start - first.Value
                : count;
        }
    }

    /// <summary>Whether the frame was marked dirty by an unpin (PG_dirty); cleared when it is freed.</summary>
    public bool IsDirty(Pfn pfn)
    {
        using (_gate.EnterScope())
        {
            return _dirty.Contains(pfn.Value);
        }
    }
}
