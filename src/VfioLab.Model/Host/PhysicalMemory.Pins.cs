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
            // In address order: GUP returns frames in virtual order, scattered over RAM when memory is shattered, and
            // neighbours in a sorted batch share the map's leaves (see PinBatch).
            PfnRun[] sorted = System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length);
            int n = 0;
            foreach (PfnRun run in runs)
            {
                if (run.Count != 0 && run.First.Value != zero)
                {
                    sorted[n++] = run;
                }
            }
            FrameRunSort.Sort(sorted.AsSpan(0, n));
            if (AreDisjoint(sorted, n))
            {
                // One pass over the pin map's leaves for the whole refill (RunMap.UpdateSorted), not a descent and a
                // leaf shift per run: on 1-page runs that was about half of what the pin map cost (issue 16).
                var pins = new PinCounts(sorted, n);
                for (int i = 0; i < n; i++)
                {
                    DebugAssertPinnableLocked(sorted[i]);
                    pins.Frames += sorted[i].Count;
                }
                _pins.UpdateSorted(ref pins);
                _pinnedFrames += pins.Changed;
                _totalPins += pins.Frames;
            }
            else
            {
                // A frame twice in one refill (a shared page mapped at two addresses of the range): one run at a time.
                for (int i = 0; i < n; i++)
                {
                    PinLocked(sorted[i]);
                }
            }
            System.Buffers.ArrayPool<PfnRun>.Shared.Return(sorted);
        }
    }

    private void PinLocked(PfnRun run)
    {
        DebugAssertPinnableLocked(run);
        ulong risen;
        if (_pins.TryInsert(run.First.Value, run.Last.Value, new FrameCount(1)))
        {
            // The common case, frames with no pin yet: one descent, no walk.
            risen = run.Count;
        }
        else
        {
            AdjustLocked(_pins, run.First.Value, run.Count, +1, out risen, out _);
        }
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
    /// left unused freed once at the end: what one batch of an unmap unpins (issue 16, as for <see cref="PinRuns"/>).
    /// Entries of the shared zero frame, never pinned, are skipped.</summary>
    public void UnpinRuns(ReadOnlySpan<PfnRun> runs, bool markDirty)
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
                    UnpinLocked(runs[0], markDirty);
                }
                ReleaseUnusedLocked(_released, _refs);
                return;
            }
            PfnRun[] sorted = System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length);
            int n = 0;
            bool ordered = true;
            foreach (PfnRun run in runs)
            {
                if (run.Count != 0 && run.First.Value != zero)
                {
                    ordered &= n == 0 || sorted[n - 1].First.Value < run.First.Value;
                    sorted[n++] = run;
                }
            }
            if (!ordered)
            {
                // An unmap sorts its batch already (DmaPinning.UnpinSortedLocked); other callers pass a few runs.
                FrameRunSort.Sort(sorted.AsSpan(0, n));
            }
            try
            {
                if (AreDisjoint(sorted, n))
                {
                    UnpinSortedLocked(sorted, n, markDirty);
                }
                else
                {
                    // A frame twice in one batch (pinned through two addresses): one run at a time.
                    for (int i = 0; i < n; i++)
                    {
                        UnpinLocked(sorted[i], markDirty);
                    }
                    ReleaseUnusedLocked(_released, _refs);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<PfnRun>.Shared.Return(sorted);
            }
        }
    }

    // Whether the first n runs, sorted by first frame, share no frame (what RunMap.UpdateSorted requires).
    private static bool AreDisjoint(PfnRun[] sorted, int n)
    {
        for (int i = 1; i < n; i++)
        {
            if (sorted[i].First.Value <= sorted[i - 1].Last.Value)
            {
                return false;
            }
        }
        return true;
    }

    // UnpinLocked for n sorted disjoint runs in one pass over the pin map's leaves (and over the dirty map's), then the
    // frames left unused freed: the same counts, dirty bits and frees as one run at a time (issue 16, see PinRuns).
    // A frame with no pin is a bug in the caller, as in UnpinLocked; here the rest of the batch is applied first and
    // the model left consistent (the counters match the map), then it throws.
    private void UnpinSortedLocked(PfnRun[] sorted, int n, bool markDirty)
    {
        var pins = new PinCounts(sorted, n) { Dropping = true, Released = _released };
        _pins.UpdateSorted(ref pins);
        _pinnedFrames -= pins.Changed;
        _totalPins -= pins.Frames;
        if (markDirty)
        {
            var dirty = new DirtyMarks(sorted, n);
            _dirty.UpdateSorted(ref dirty);
        }
        ReleaseUnusedLocked(_released, _refs);
        if (pins.Unpinned)
        {
            for (int i = 0; i < n; i++)
            {
                if (sorted[i].Last.Value >= pins.UnpinnedFrame)
                {
                    HostThrowHelper.ThrowInvalidOperation($"unpin {sorted[i]}: frame not pinned");
                }
            }
        }
    }

    // One pin added to (or, Dropping, taken from) each frame of sorted disjoint runs, for RunMap.UpdateSorted.
    // Changed: frames that went 0 -> 1 (or 1 -> 0, appended to Released, adjacent ones joined). Frames: pins added
    // (or dropped). Unpinned/UnpinnedFrame: the first frame dropping found with no pin.
    private struct PinCounts(PfnRun[] runs, int count) : IRunBatch<FrameCount>
    {
        public bool Dropping;
        public List<PfnRun>? Released;
        public ulong Changed;
        public ulong Frames;
        public bool Unpinned;
        public ulong UnpinnedFrame;

        public readonly int Count => count;

        public readonly ulong StartOf(int i) => runs[i].First.Value;

        public readonly ulong LastOf(int i) => runs[i].First.Value + runs[i].Count - 1;

        public bool Apply(ulong start, ulong last, bool mapped, FrameCount value, out FrameCount result)
        {
            ulong frames = last - start + 1;
            if (!Dropping)
            {
                Changed += mapped ? 0 : frames;
                result = new FrameCount(mapped ? value.Count + 1 : 1);
                return true;
            }
            result = default;
            if (!mapped)
            {
                if (!Unpinned)
                {
                    Unpinned = true;
                    UnpinnedFrame = start;
                }
                return false;
            }
            Frames += frames;
            if (value.Count > 1)
            {
                result = new FrameCount(value.Count - 1);
                return true;
            }
            Changed += frames;
            List<PfnRun> released = Released!;
            if (released.Count > 0 && released[^1].First.Value + released[^1].Count == start)
            {
                released[^1] = released[^1] with { Count = released[^1].Count + frames };
            }
            else
            {
                released.Add(new PfnRun(new Pfn(start), frames));
            }
            return false;
        }
    }

    // The dirty bit set on each frame of sorted disjoint runs (unpin_user_pages_dirty_lock), for RunMap.UpdateSorted.
    private readonly struct DirtyMarks(PfnRun[] runs, int count) : IRunBatch<Presence>
    {
        public int Count => count;

        public ulong StartOf(int i) => runs[i].First.Value;

        public ulong LastOf(int i) => runs[i].First.Value + runs[i].Count - 1;

        public bool Apply(ulong start, ulong last, bool mapped, Presence value, out Presence result)
        {
            result = default;
            return true;
        }
    }

    // Drops the pins; the frames that lost their last one are appended to _released for the caller to free.
    private void UnpinLocked(PfnRun run, bool markDirty)
    {
        _gate.AssertHeld();
        ulong first = run.First.Value;
        ulong last = run.Last.Value;
        if (_pins.TryGet(first, out Run<FrameCount> only) && only.Last >= last && only.Value.Count == 1)
        {
            // The common case, frames holding this one pin: drop them from the map in one removal.
            if (markDirty)
            {
                _dirty.Set(first, last, default);
            }
            _pins.Remove(first, last);
            _pinnedFrames -= run.Count;
            _totalPins -= run.Count;
            _released.Add(run);
            return;
        }
        if (!_pins.Covers(first, last))
        {
            HostThrowHelper.ThrowInvalidOperation($"unpin {run}: frame not pinned");
        }
        if (markDirty)
        {
            _dirty.Set(first, last, default);
        }
        AdjustLocked(_pins, first, run.Count, -1, out _, out ulong fallen);
        _pinnedFrames -= fallen;
        _totalPins -= run.Count;
    }

    /// <summary>The pin count of a frame (0 for frames outside RAM).</summary>
    public ulong PinCount(Pfn pfn)
    {
        using (_gate.EnterScope())
        {
            return _pins.TryGetValue(pfn.Value, out FrameCount c) ? c.Count : 0;
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
            return _dirty.TryGet(pfn.Value, out _);
        }
    }
}
