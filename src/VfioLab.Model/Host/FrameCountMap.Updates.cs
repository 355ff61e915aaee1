using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

// Updates: one range (Set, Adjust) split into sparse stretches and dense windows, and the batches of a GUP refill or an
// unmap (AddRuns, DropRuns, MarkRuns) applied run by run in the order given where windows are dense, the rest sorted
// and applied in one pass over the run map's leaves (RunMap.UpdateSorted).
internal sealed partial class FrameCountMap
{
    /// <summary>Sets the count of every frame of <c>[start, last]</c> to <paramref name="count"/> (0 removes them).</summary>
    public void Set(ulong start, ulong last, ulong count)
    {
        ulong cursor = start;
        while (true)
        {
            ulong end = NextSegment(cursor, last, out bool dense);
            if (dense && count <= ushort.MaxValue)
            {
                SetDense(cursor, end, (ushort)count);
            }
            else
            {
                if (dense)
                {
                    ForceSparse(cursor >> WindowShift);
                }
                SetSparse(cursor, end, count);
            }
            if (end >= last)
            {
                return;
            }
            cursor = end + 1;
        }
    }

    /// <summary>Adds <paramref name="delta"/> (+1 or -1) to the count of every frame of <c>[first, last]</c>. Frames
    /// that go 0 → 1 are counted in <paramref name="risen"/>; those that go 1 → 0 in <paramref name="fallen"/> and,
    /// given a list, appended to <paramref name="released"/> (adjacent ones joined). Dropping a frame with no count
    /// throws before anything changes.</summary>
    public void Adjust(ulong first, ulong last, int delta, List<PfnRun>? released, out ulong risen, out ulong fallen)
    {
        risen = 0;
        fallen = 0;
        if (delta < 0 && FirstZero(first, last) is { } zero)
        {
            HostThrowHelper.ThrowInvalidOperation($"count underflow at pfn 0x{zero:x}");
        }
        ulong cursor = first;
        while (true)
        {
            ulong end = NextSegment(cursor, last, out bool dense);
            if (dense)
            {
                ulong window = cursor >> WindowShift;
                ref Slot slot = ref SlotFor(window);
                if (delta > 0)
                {
                    risen += AddDense(window, ref slot, cursor, end);
                }
                else
                {
                    ulong missing = ulong.MaxValue;
                    fallen += DropDense(window, ref slot, cursor, end, released, ref missing, out _);
                }
            }
            else
            {
                AdjustSparse(cursor, end, delta, released, ref risen, ref fallen, note: true);
            }
            if (end >= last)
            {
                return;
            }
            cursor = end + 1;
        }
    }

    /// <summary>Adds one to the count of every frame of each run, in any order (a frame may appear twice); returns the
    /// frames that went 0 → 1. What GUP's refill pins. Given <paramref name="shatteredLike"/> (the reference counts of
    /// the same frames), a batch of at least <see cref="ShatteredBatchRuns"/> runs (by default) makes a sparse window that is dense
    /// there go dense at its <c>sparseBelow</c>-th short edit instead of its <c>denseAbove</c>-th (see
    /// <see cref="CountTowardDense"/>).</summary>
    public ulong AddRuns(ReadOnlySpan<PfnRun> runs, FrameCountMap? shatteredLike = null)
    {
        CountTowardDense(runs, shatteredLike: runs.Length >= _shatteredBatchRuns && shatteredLike is { DenseWindowCount: > 0 } ? shatteredLike : null);
        _holdDense = true;
        var add = new AddEach();
        (ulong risen, _, _) = UpdateEach(runs, ref add);
        _holdDense = false;
        return risen + add.Risen;
    }

    /// <summary>Drops one from the count of every frame of each run, in any order. Frames that go 1 → 0 are appended
    /// to <paramref name="released"/> if given (adjacent ones joined) and counted in <paramref name="fallen"/>; frames with no
    /// count are skipped, the rest applied, and the lowest of them returned in <paramref name="missing"/>
    /// (<see cref="ulong.MaxValue"/> if none); <paramref name="dropped"/> counts the counts taken. What an unmap's
    /// batch unpins. Given <paramref name="heldBy"/>, frames that still have a count there are not appended (an unmap's
    /// frames still mapped by the process: a million-entry list at 4 GiB, 16 B per page at the peak, for nothing).</summary>
    public void DropRuns(ReadOnlySpan<PfnRun> runs, List<PfnRun>? released, out ulong fallen, out ulong dropped, out ulong missing,
        FrameCountMap? heldBy = null)
    {
        var drop = new DropEach(released, heldBy);
        (ulong changed, ulong frames, ulong sparseMissing) = UpdateEach(runs, ref drop);
        fallen = changed + drop.Fallen;
        dropped = frames + drop.Dropped;
        missing = Math.Min(sparseMissing, drop.Missing);
    }

    /// <summary>Sets the count of every frame of each run to 1, in any order (a page flag set: PG_dirty by a dirtying
    /// unpin). Given <paramref name="denseLike"/> (the pin map of the frames being unpinned), a sparse window that is
    /// dense there goes dense here before the marks land, as it would after a few hundred of them: an unpin dirties
    /// the frames it unpins, so where the pins have shattered the dirty bits shatter alike. Building the window's runs
    /// first only to drop them for the array was ~4 B per page of garbage at the peak of a 64 GiB UNMAP on 1-page runs
    /// (issue 16; docs/benchmarks.md). It costs at most what the pin map's own dense windows cost.</summary>
    public void MarkRuns(ReadOnlySpan<PfnRun> runs, FrameCountMap? denseLike = null)
    {
        CountTowardDense(runs, denseLike is { DenseWindowCount: > 0 } ? denseLike : null);
        _holdDense = true;
        var mark = new MarkEach();
        UpdateEach(runs, ref mark);
        _holdDense = false;
    }

    /// <summary>Where window <paramref name="window"/> is dense, drops one count from each frame whose bit is set in
    /// <paramref name="bits"/> (its 64 words, bit <c>b</c> of word <c>w</c> the window's frame <c>64 * w + b</c>), in
    /// frame order, and answers true; as <see cref="DropRuns"/> would for those frames as 1-frame runs (the same counts,
    /// released frames, <paramref name="fallen"/>, <paramref name="dropped"/> and lowest <paramref name="missing"/>
    /// frame). A sparse window changes nothing and answers false. What an UNMAP's pieces gathered as bits
    /// (<see cref="FrameBitSet"/>) unpin: upward through the window's 8 KiB of counts, each line of counts met once
    /// however many of its frames go, instead of a random line per frame in IOVA order (issue 16).</summary>
    public bool TryDropBits(ulong window, ReadOnlySpan<ulong> bits, List<PfnRun>? released, FrameCountMap? heldBy,
        ref ulong fallen, ref ulong dropped, ref ulong missing)
    {
        ref Slot slot = ref DenseSlot(window);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
        {
            return false;
        }
        ushort[] counts = slot.Counts!;
        ulong ws = window << WindowShift;
        int fell = 0;
        int edits = 0;
        for (int w = 0; w < bits.Length; w++)
        {
            ulong word = bits[w];
            while (word != 0)
            {
                int k = (w << 6) | System.Numerics.BitOperations.TrailingZeroCount(word);
                word &= word - 1;
                edits++;
                ref ushort c = ref Element(counts, k);
                if (c == 0)
                {
                    missing = Math.Min(missing, ws + (ulong)k);
                    continue;
                }
                dropped++;
                if (--c == 0)
                {
                    fell++;
                    if (released is not null && (heldBy is null || heldBy.CountAt(ws + (ulong)k) == 0))
                    {
                        AppendReleased(released, ws + (ulong)k, 1);
                    }
                }
            }
        }
        slot.NonZero -= fell;
        fallen += (ulong)fell;
        AfterDenseEdits(window, ref slot, edits);
        return true;
    }

    // What one of the batch updates above does to a run: inside one dense window, across sparse and dense windows (rare:
    // a long run on fragmented memory), and which kind of CountBatch takes the runs that lie in sparse windows. A struct,
    // so UpdateEach is compiled for each and the calls inline.
    private interface IEachRun
    {
        CountBatch.Mode Kind { get; }

        List<PfnRun>? Released { get; }

        FrameCountMap? HeldBy { get; }

        void Dense(FrameCountMap map, ulong window, ref Slot slot, ulong first, ulong last);

        // Dense of the one frame at index `k` of the window: the same counts, edits and totals.
        void DenseOne(FrameCountMap map, ulong window, ref Slot slot, ushort[] counts, int k);

        void Mixed(FrameCountMap map, ulong first, ulong last);
    }

    // A batch in the order given where windows are dense (each count fetched ahead), the runs in sparse windows gathered
    // and applied sorted in one pass; returns that pass's totals.
    private (ulong Changed, ulong Frames, ulong Missing) UpdateEach<T>(ReadOnlySpan<PfnRun> runs, ref T each)
        where T : struct, IEachRun
    {
        FrameCountMap? heldBy = each.HeldBy;
        PfnRun[]? pending = null;
        int np = 0;
        for (int i = 0; i < runs.Length; i++)
        {
            PfnRun run = runs[i];
            Prefetch(runs, i + PrefetchAhead);
            heldBy?.Prefetch(runs, i + PrefetchAhead);
            ulong first = run.First.Value;
            ulong window = first >> WindowShift;
            if (run.Count == 1)
            {
                // One frame (every run of memory shattered into 1-page runs): no range loop and no bounds check, and the
                // counts array tested for null here, where it is loaded, so that nothing reads its header line again
                // (a null check on a line of its own, ~15 % of each pass's samples on 1-page runs).
                ref Slot one = ref _windows.Find(window);
                if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref one) && one.Counts is { } counts)
                {
                    each.DenseOne(this, window, ref one, counts, (int)(first & WindowMask));
                    continue;
                }
            }
            ulong last = first + run.Count - 1;
            if ((last >> WindowShift) == window)
            {
                ref Slot slot = ref DenseSlot(window);
                if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
                {
                    each.Dense(this, window, ref slot, first, last);
                    continue;
                }
            }
            if (!AnyDense(first, last))
            {
                (pending ??= System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length))[np++] = run;
            }
            else
            {
                each.Mixed(this, first, last);
            }
        }
        if (pending is null)
        {
            return (0, 0, ulong.MaxValue);
        }
        var batch = new CountBatch(pending, np, each.Kind) { Released = each.Released, HeldBy = heldBy };
        ApplySparse(ref batch);
        System.Buffers.ArrayPool<PfnRun>.Shared.Return(pending);
        return (batch.Changed, batch.Frames, batch.Missing);
    }

    private struct AddEach : IEachRun
    {
        public ulong Risen;

        public readonly CountBatch.Mode Kind => CountBatch.Mode.Add;

        public readonly List<PfnRun>? Released => null;

        public readonly FrameCountMap? HeldBy => null;

        public void Dense(FrameCountMap map, ulong window, ref Slot slot, ulong first, ulong last) =>
            Risen += map.AddDense(window, ref slot, first, last);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void DenseOne(FrameCountMap map, ulong window, ref Slot slot, ushort[] counts, int k)
        {
            ref ushort c = ref Element(counts, k);
            if (c == ushort.MaxValue)
            {
                ulong frame = (window << WindowShift) + (ulong)k;
                Dense(map, window, ref slot, frame, frame);
                return;
            }
            int rose = c == 0 ? 1 : 0;
            c++;
            slot.NonZero += rose;
            Risen += (ulong)rose;
            map.AfterDenseEdits(window, ref slot, 1, grew: rose != 0);
        }

        public void Mixed(FrameCountMap map, ulong first, ulong last)
        {
            map.Adjust(first, last, +1, null, out ulong risen, out _);
            Risen += risen;
        }
    }

    private struct DropEach(List<PfnRun>? released, FrameCountMap? heldBy) : IEachRun
    {
        public ulong Fallen;
        public ulong Dropped;
        public ulong Missing = ulong.MaxValue;

        public readonly CountBatch.Mode Kind => CountBatch.Mode.Drop;

        public readonly List<PfnRun>? Released => released;

        public readonly FrameCountMap? HeldBy => heldBy;

        public void Dense(FrameCountMap map, ulong window, ref Slot slot, ulong first, ulong last)
        {
            Fallen += map.DropDense(window, ref slot, first, last, released, ref Missing, out ulong dropped, heldBy);
            Dropped += dropped;
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void DenseOne(FrameCountMap map, ulong window, ref Slot slot, ushort[] counts, int k)
        {
            ref ushort c = ref Element(counts, k);
            ulong frame = (window << WindowShift) + (ulong)k;
            if (c == 0)
            {
                Missing = Math.Min(Missing, frame);
            }
            else
            {
                Dropped++;
                if (--c == 0)
                {
                    Fallen++;
                    slot.NonZero--;
                    if (released is not null && (heldBy is null || heldBy.CountAt(frame) == 0))
                    {
                        AppendReleased(released, frame, 1);
                    }
                }
            }
            map.AfterDenseEdits(window, ref slot, 1);
        }

        // Piece by piece: Adjust knows nothing of heldBy or of frames without a count.
        public void Mixed(FrameCountMap map, ulong first, ulong last)
        {
            ulong cursor = first;
            while (true)
            {
                ulong end = map.NextSegment(cursor, last, out bool dense);
                if (dense)
                {
                    ulong w = cursor >> WindowShift;
                    Dense(map, w, ref map.SlotFor(w), cursor, end);
                }
                else
                {
                    PfnRun[] one = [new PfnRun(new Pfn(cursor), end - cursor + 1)];
                    var piece = new CountBatch(one, 1, CountBatch.Mode.Drop) { Released = released, HeldBy = heldBy };
                    map._runs.UpdateSorted(ref piece);
                    Fallen += piece.Changed;
                    Dropped += piece.Frames;
                    Missing = Math.Min(Missing, piece.Missing);
                }
                if (end >= last)
                {
                    return;
                }
                cursor = end + 1;
            }
        }
    }

    private readonly struct MarkEach : IEachRun
    {
        public CountBatch.Mode Kind => CountBatch.Mode.Mark;

        public List<PfnRun>? Released => null;

        public FrameCountMap? HeldBy => null;

        public void Dense(FrameCountMap map, ulong window, ref Slot slot, ulong first, ulong last)
        {
            ushort[] counts = slot.Counts!;
            int marked = 0;
            for (int k = (int)(first & WindowMask), b = (int)(last & WindowMask); k <= b; k++)
            {
                if (counts[k] != 1)
                {
                    marked += counts[k] == 0 ? 1 : 0;
                    counts[k] = 1;
                }
            }
            slot.NonZero += marked;
            map.AfterDenseEdits(window, ref slot, 1, grew: marked != 0);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public void DenseOne(FrameCountMap map, ulong window, ref Slot slot, ushort[] counts, int k)
        {
            ref ushort c = ref Element(counts, k);
            int marked = 0;
            if (c != 1)
            {
                marked = c == 0 ? 1 : 0;
                c = 1;
            }
            slot.NonZero += marked;
            map.AfterDenseEdits(window, ref slot, 1, grew: marked != 0);
        }

        public void Mixed(FrameCountMap map, ulong first, ulong last) => map.Set(first, last, 1);
    }

    // Frame `k` of a dense window's counts without a bounds check: every Counts array is WindowFrames long (ToDense and
    // the populate's dense windows make them so) and every caller masks `k` with WindowMask, so the check could never
    // fail, and it read the array's header, a second cache line per frame beside the count's own, on every batch
    // update of memory shattered into 1-page runs.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ref ushort Element(ushort[] counts, int k)
    {
        System.Diagnostics.Debug.Assert(counts.Length == (int)WindowFrames && (uint)k < WindowFrames);
        return ref System.Runtime.CompilerServices.Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(counts), k);
    }

    /// <summary>Runs a batch must hold, by default, for <see cref="AddRuns"/> to follow its <c>shatteredLike</c> map:
    /// GUP's refills start at 64 runs and grow eightfold while they come back full of short runs (PinBatch), so on
    /// shattered memory the fourth refill of a MAP and every one after it are this large.</summary>
    public const int ShatteredBatchRuns = 4096;

    // Runs of a batch between asking for a frame's count to be fetched and updating it (8 and 32 measured the same).
    private const int PrefetchAhead = 16;

    // Asks the CPU to fetch the count of runs[i]'s first frame where its window is dense (nothing past the batch's end,
    // or on a CPU without the instruction). On shattered memory each run of a batch lands in another window, and the
    // batch's updates waited for a cache miss each, one after the other: fetched 16 runs ahead, UNMAP of 4 GiB on 1-page
    // runs took ~0.075 s of CPU instead of ~0.09 (issue 16; docs/benchmarks.md). The only unsafe code of the model: a
    // prefetch hint reads nothing into the program and never faults, so an array the GC moved meanwhile costs a useless
    // fetch at worst; .NET has no prefetch without a pointer.
    // Inlined, as DenseSlot and AfterDenseEdits' common case: each was a call per page (twice per map on UNMAP, with the
    // reference map's read-ahead), and the JIT kept them out of line (they showed as their own symbols in profiles).
    // Measured under heavy load (issue 16; docs/benchmarks.md, 2026-12-07 "onepage4"): 157-159 ns/page of CPU for 4 GiB
    // on 1-page runs against 173-224 in one sitting, but within the noise in the next; the lead's idle run decides.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Prefetch(ReadOnlySpan<PfnRun> runs, int i)
    {
        if ((uint)i < (uint)runs.Length && System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            ulong frame = runs[i].First.Value;
            if (DenseAt(frame >> WindowShift) is { } counts)
            {
                PrefetchElement(ref Element(counts, (int)(frame & WindowMask)));
            }
        }
    }

    private static unsafe void PrefetchElement(ref ushort element) =>
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref element));

    // Counts each short run of a batch toward its sparse window's densify check before any is applied, so a refill that
    // lands many runs in one window applies them to the dense form.
    // A window dense in `denseLike` goes dense at once (MarkRuns), unless a count too large for the array keeps it sparse.
    // A window that was dense until its counts all fell to 0 (an unmap of shattered memory) goes dense again at its
    // _sparseBelow-th short edit (the threshold below which a dense window goes back to runs) instead of its
    // _denseAbove-th: memory that shattered stays shattered, and the next MAP over it built each window's few hundred runs
    // in the run map, sorted, only to copy them into a new array (measured on 1-page runs, issue 16: docs/benchmarks.md).
    // The batch lands after this, so a window made dense here is never left empty.
    // Given `shatteredLike` (AddRuns of a large batch: the reference counts of the frames pinned), a window dense there
    // goes dense at its _sparseBelow-th short edit too, as one that was dense before: frames allocated one page at a time
    // from all over RAM are pinned one page at a time from all over RAM. Measured on the first MAP of 64 GiB on 1-page
    // runs (issue 16: docs/benchmarks.md, 2026-12-07 "onepage3"): each of the ~4600 pin windows took its first 256 pins
    // as runs of the run map, ~1.2 M pins sorted and merged into leaves a refill at a time only to be copied into an
    // array, about 0.45 s of the MAP's 2.3 s of CPU. Only for large batches (a GUP refill that grew, see PinBatch): a
    // 4 KiB MAP on shattered memory pins one run, and must not allocate an 8 KiB window for it.
    private void CountTowardDense(ReadOnlySpan<PfnRun> runs, FrameCountMap? denseLike = null, FrameCountMap? shatteredLike = null)
    {
        foreach (PfnRun run in runs)
        {
            ulong first = run.First.Value;
            ulong window = first >> WindowShift;
            if (((first + run.Count - 1) >> WindowShift) == window && DenseAt(window) is null)
            {
                ref Slot slot = ref SlotFor(window);
                bool again = (slot.WasDense || shatteredLike?.DenseAt(window) is not null) && slot.Edits + 1 >= _sparseBelow;
                if ((again || denseLike?.DenseAt(window) is not null) && slot.Edits > ForcedSparse / 2)
                {
                    slot.WasDense = false;
                    if (FitsDense(window))
                    {
                        ToDense(window, ref slot);
                        continue;
                    }
                }
                NoteSparseEdit(window);
            }
        }
    }

    // The batch's runs that land in sparse windows: sorted by frame (unless already in order) and applied in one pass
    // over the run map's leaves; runs that share a frame (one page at two addresses) one at a time instead.
    private void ApplySparse(ref CountBatch batch)
    {
        PfnRun[] runs = batch.Runs;
        int n = batch.Count;
        FrameRunSort.SortUnlessOrdered(runs.AsSpan(0, n));
        bool disjoint = true;
        for (int i = 1; i < n && disjoint; i++)
        {
            disjoint = runs[i].First.Value > runs[i - 1].Last.Value;
        }
        if (disjoint)
        {
            _runs.UpdateSorted(ref batch);
            return;
        }
        for (int i = 0; i < n; i++)
        {
            var one = new CountBatch(runs[i..(i + 1)], 1, batch.Kind) { Released = batch.Released, HeldBy = batch.HeldBy };
            _runs.UpdateSorted(ref one);
            batch.Changed += one.Changed;
            batch.Frames += one.Frames;
            batch.Missing = Math.Min(batch.Missing, one.Missing);
        }
    }

    // Whether any window of [first, last] is dense.
    private bool AnyDense(ulong first, ulong last) => _windows.AnyDense(first, last);

    // The end of the stretch from cursor (at most last) that is either sparse throughout or one dense window.
    private ulong NextSegment(ulong cursor, ulong last, out bool dense) => _windows.NextStretch(cursor, last, out dense);

    // A dense window back to runs for good (a count beyond a ushort).
    private void ForceSparse(ulong window)
    {
        ref Slot slot = ref SlotFor(window);
        MakeSparse(window, ref slot);
        slot.Edits = ForcedSparse;
    }

    private void SetSparse(ulong start, ulong last, ulong count)
    {
        if (count == 0)
        {
            _runs.Remove(start, last);
        }
        else
        {
            _runs.Set(start, last, new FrameCount(count));
        }
        if (last - start < WindowFrames && (last >> WindowShift) == (start >> WindowShift))
        {
            NoteSparseEdit(start >> WindowShift);
        }
    }

    private void SetDense(ulong start, ulong last, ushort count)
    {
        ulong window = start >> WindowShift;
        ref Slot slot = ref SlotFor(window);
        ushort[] counts = slot.Counts!;
        int a = (int)(start & WindowMask);
        int len = (int)(last - start) + 1;
        Span<ushort> span = counts.AsSpan(a, len);
        int wasZero = len == 1 ? (span[0] == 0 ? 1 : 0) : span.Count((ushort)0);
        span.Fill(count);
        slot.NonZero += count == 0 ? -(len - wasZero) : wasZero;
        AfterDenseEdits(window, ref slot, 1, grew: count != 0 && wasZero != 0);
    }

    // +1 on [first, last] inside dense window `window`; the frames that went 0 -> 1. A count that would pass a ushort
    // sends the window back to runs for good and the rest goes there.
    private ulong AddDense(ulong window, ref Slot slot, ulong first, ulong last)
    {
        ushort[] counts = slot.Counts!;
        ulong risen = 0;
        int a = (int)(first & WindowMask);
        int b = (int)(last & WindowMask);
        for (int i = a; i <= b; i++)
        {
            ushort c = counts[i];
            if (c == ushort.MaxValue)
            {
                slot.NonZero += (int)risen;
                ForceSparse(window);
                ulong r = 0;
                ulong f = 0;
                AdjustSparse((window << WindowShift) + (ulong)i, last, +1, null, ref r, ref f, note: false);
                return risen + r;
            }
            risen += c == 0 ? 1UL : 0;
            counts[i] = (ushort)(c + 1);
        }
        slot.NonZero += (int)risen;
        AfterDenseEdits(window, ref slot, 1, grew: risen != 0);
        return risen;
    }

    // -1 on [first, last] inside dense window `window`, skipping frames with no count (the lowest kept in missing); the
    // frames that went 1 -> 0, appended to released.
    private ulong DropDense(ulong window, ref Slot slot, ulong first, ulong last, List<PfnRun>? released, ref ulong missing, out ulong dropped,
        FrameCountMap? heldBy = null)
    {
        ushort[] counts = slot.Counts!;
        ulong fallen = 0;
        dropped = 0;
        int a = (int)(first & WindowMask);
        int b = (int)(last & WindowMask);
        ulong ws = window << WindowShift;
        for (int i = a; i <= b; i++)
        {
            ushort c = counts[i];
            if (c == 0)
            {
                missing = Math.Min(missing, ws + (ulong)i);
                continue;
            }
            dropped++;
            counts[i] = (ushort)(c - 1);
            if (c == 1)
            {
                fallen++;
                if (released is not null && (heldBy is null || heldBy.CountAt(ws + (ulong)i) == 0))
                {
                    AppendReleased(released, ws + (ulong)i, 1);
                }
            }
        }
        slot.NonZero -= (int)fallen;
        AfterDenseEdits(window, ref slot, 1);
        return fallen;
    }

    private static void AppendReleased(List<PfnRun> released, ulong start, ulong frames)
    {
        if (released.Count > 0 && released[^1].First.Value + released[^1].Count == start)
        {
            released[^1] = released[^1] with { Count = released[^1].Count + frames };
        }
        else
        {
            released.Add(new PfnRun(new Pfn(start), frames));
        }
    }

    // delta on [first, last] of the run map, walking its runs and gaps (the caller checked that a drop finds counts); a
    // short edit then counts toward its window's densify check (after the edit: the check may make the window dense).
    private void AdjustSparse(ulong first, ulong last, int delta, List<PfnRun>? released, ref ulong risen, ref ulong fallen, bool note)
    {
        AdjustRuns(first, last, delta, released, ref risen, ref fallen);
        if (note && last - first < WindowFrames && (last >> WindowShift) == (first >> WindowShift))
        {
            NoteSparseEdit(first >> WindowShift);
        }
    }

    private void AdjustRuns(ulong first, ulong last, int delta, List<PfnRun>? released, ref ulong risen, ref ulong fallen)
    {
        if (delta > 0 && _runs.TryInsert(first, last, new FrameCount(1)))
        {
            // The common case, frames with no count yet: one descent, no walk.
            risen += last - first + 1;
            return;
        }
        if (delta < 0 && _runs.TryGet(first, out Run<FrameCount> only) && only.Last >= last && only.Value.Count == 1)
        {
            // The common case, frames holding this one count: one removal.
            _runs.Remove(first, last);
            fallen += last - first + 1;
            if (released is not null)
            {
                AppendReleased(released, first, last - first + 1);
            }
            return;
        }
        _scratch.Clear();
        ulong next = first;
        foreach (Run<FrameCount> r in _runs.Overlapping(first, last))
        {
            ulong s = Math.Max(r.Start, first);
            if (s > next)
            {
                _scratch.Add(new Run<FrameCount>(next, s - 1, default));
            }
            ulong e = Math.Min(r.Last, last);
            _scratch.Add(new Run<FrameCount>(s, e, r.Value));
            next = e + 1;
        }
        if (next <= last && next >= first)
        {
            _scratch.Add(new Run<FrameCount>(next, last, default));
        }
        foreach (Run<FrameCount> seg in _scratch)
        {
            ulong c = seg.Value.Count;
            if (delta > 0)
            {
                _runs.Set(seg.Start, seg.Last, new FrameCount(c + 1));
                risen += c == 0 ? seg.Span + 1 : 0;
            }
            else if (c == 1)
            {
                _runs.Remove(seg.Start, seg.Last);
                fallen += seg.Span + 1;
                if (released is not null)
                {
                    AppendReleased(released, seg.Start, seg.Span + 1);
                }
            }
            else
            {
                _runs.Set(seg.Start, seg.Last, new FrameCount(c - 1));
            }
        }
    }

    // One count added to (Add), taken from (Drop) or set to 1 on (Mark) each frame of sorted disjoint runs, for
    // RunMap.UpdateSorted. Changed: frames that went 0 -> 1 (Add, Mark) or 1 -> 0 (Drop, appended to Released, adjacent
    // ones joined). Frames: counts taken (Drop). Missing: the lowest frame Drop found with no count.
    private struct CountBatch(PfnRun[] runs, int count, CountBatch.Mode kind) : IRunBatch<FrameCount>
    {
        public List<PfnRun>? Released;
        public FrameCountMap? HeldBy;
        public ulong Changed;
        public ulong Frames;
        public ulong Missing = ulong.MaxValue;

        public enum Mode
        {
            Add,
            Drop,
            Mark,
        }

        public readonly PfnRun[] Runs => runs;

        public readonly Mode Kind => kind;

        public readonly int Count => count;

        public readonly ulong StartOf(int i) => runs[i].First.Value;

        public readonly ulong LastOf(int i) => runs[i].First.Value + runs[i].Count - 1;

        public bool Apply(ulong start, ulong last, bool mapped, FrameCount value, out FrameCount result)
        {
            ulong frames = last - start + 1;
            if (kind != Mode.Drop)
            {
                Changed += mapped ? 0 : frames;
                result = new FrameCount(kind == Mode.Mark ? 1 : mapped ? value.Count + 1 : 1);
                return true;
            }
            result = default;
            if (!mapped)
            {
                Missing = Math.Min(Missing, start);
                return false;
            }
            Frames += frames;
            if (value.Count > 1)
            {
                result = new FrameCount(value.Count - 1);
                return true;
            }
            Changed += frames;
            if (Released is not null && (HeldBy is null || !HeldBy.NoneZero(start, last)))
            {
                AppendReleased(Released, start, frames);
            }
            return false;
        }
    }
}
