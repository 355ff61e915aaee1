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
            for (int i = 0; i < n; i++)
            {
                PinLocked(sorted[i]);
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
            foreach (PfnRun run in runs)
            {
                if (run.Count != 0 && run.First.Value != zero)
                {
                    UnpinLocked(run, markDirty);
                }
            }
            ReleaseUnusedLocked(_released, _refs);
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
