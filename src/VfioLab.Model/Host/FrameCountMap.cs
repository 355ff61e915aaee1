using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>
/// A count per host frame (a pin count, a reference count, or 0/1 for a page flag such as the free mark; PG_dirty is a
/// <see cref="FrameFlagMap"/>, a bit per frame where memory has shattered), 0 meaning none,
/// held as extents where memory is contiguous and as a direct per-frame array where it has shattered: the model's
/// <c>struct page</c> field, paid for only where extents stop paying (issue 16).
/// </summary>
/// <remarks>
/// <para>Two forms, per aligned window of <see cref="WindowFrames"/> frames:</para>
/// <list type="bullet">
/// <item>Sparse (the default, and all a host ever has on contiguous or huge-page memory): the window's frames are runs of
/// a <see cref="RunMap{T}"/>, O(log n) in runs per update, a run reaching across any number of sparse windows.</item>
/// <item>Dense: one <c>ushort</c> per frame, owned by the window alone, found through a two-level directory indexed by
/// <c>frame &gt;&gt; WindowShift</c>: a pin or unpin is an array write, in any order, no descent and no sort. The run
/// map holds no key of a dense window.</item>
/// </list>
/// <para>Why, measured (docs/benchmarks.md, 2026-12-07 "frames"): on memory shattered into 1-page runs the pin map's
/// leaf merges and the sorts that fed them were a quarter of a MAP+UNMAP's CPU time, and the three frame maps cost
/// 16 B/page at 64 GiB and 66 B/page at 4 GiB in 12 GiB; a dense window is 2 B per frame of RAM whatever the order.</para>
/// <para>When a window switches: each short edit of a sparse window counts toward it; past <c>denseAbove</c> edits the
/// window's runs are counted and, if more than <c>denseAbove</c> (256 by default: a run costs ~32 B in the run map's
/// leaves, so from there the array, 8 KiB, is no larger; measured at 128 too, where windows of 4-page runs at 4 GiB
/// in 12 GiB, ~230 runs, went dense, were dropped by every UNMAP and built again by every MAP, and their pair cost
/// ~2x main's: at 256 they stay runs), it goes dense. A dense window whose counts all
/// reach 0 is dropped (nothing goes back to the run map), one whose frames all come to hold one count goes back to a
/// single run, and every <see cref="DenseRecheck"/> edits it counts its runs and goes back to runs below
/// <c>sparseBelow</c>; a count above <see cref="ushort.MaxValue"/> sends it back to runs for
/// good (counts that large are a scenario that maps one page tens of thousands of times, not shattered memory). So a
/// host whose memory never shatters never allocates a directory: the cost of hosts up to <c>LabLimits</c>' 1 PiB is
/// unchanged until their memory fragments, and only the fragmented windows pay.</para>
/// <para>Reads see one map: <see cref="Overlapping"/>, <see cref="TryGet"/> and the others return the same maximal runs a
/// single <see cref="RunMap{T}"/> of the same counts would (dense windows are scanned back into runs and joined with
/// their neighbours across window edges), so inspection, checks, snapshots and the differential oracle read exactly
/// what they read before. Not thread-safe: <see cref="PhysicalMemory"/>'s lock protects it.</para>
/// </remarks>
internal sealed partial class FrameCountMap
{
    /// <summary>log2 of the frames per window.</summary>
    public const int WindowShift = 12;

    /// <summary>Frames per window: 4096 (16 MiB of 4 KiB pages); a dense window is 8 KiB.</summary>
    public const ulong WindowFrames = 1UL << WindowShift;

    /// <summary>Edits of a dense window between two counts of its runs.</summary>
    public const int DenseRecheck = 4096;

    private const ulong WindowMask = WindowFrames - 1;

    // Slot.Edits of a window kept sparse for good (a count beyond a ushort); a postponed densify check is never this low.
    private const int ForcedSparse = int.MinValue / 2;

    // Windows per directory block: a block (64 KiB of slots) covers 2^24 frames, 64 GiB of 4 KiB pages; the top array
    // grows to the highest block used, 16 Ki references for 1 PiB.

    private readonly RunMap<FrameCount> _runs;
    private readonly List<Run<FrameCount>> _scratch = [];
    private readonly int _denseAbove;
    private readonly int _sparseBelow;
    private WindowDirectory<Slot> _windows = new();

    // Set while a batch applies: its runs were sorted into dense and sparse windows up front, so no window may turn
    // dense under it (its sparse runs would land in a dense window's keys).
    private bool _holdDense;

    private readonly int _shatteredBatchRuns;

    /// <summary>A map with the default thresholds (dense above 256 runs per window, back to runs below 16, batches of
    /// <see cref="ShatteredBatchRuns"/> runs follow their hint).</summary>
    public FrameCountMap()
        : this(RunMap<FrameCount>.DefaultNodeCapacity, 256, 16)
    {
    }

    /// <summary>A map with <paramref name="nodeCapacity"/>-entry run-map nodes and the given switching thresholds (tests
    /// use small ones so windows switch both ways often); <paramref name="shatteredBatchRuns"/> is the smallest batch
    /// <see cref="AddRuns"/> takes its <c>shatteredLike</c> hint for.</summary>
    public FrameCountMap(int nodeCapacity, int denseAbove, int sparseBelow, int shatteredBatchRuns = ShatteredBatchRuns)
    {
        System.Diagnostics.Debug.Assert(denseAbove > 0 && sparseBelow >= 0 && sparseBelow < denseAbove && shatteredBatchRuns > 0);
        _runs = new RunMap<FrameCount>(nodeCapacity);
        _denseAbove = denseAbove;
        _sparseBelow = sparseBelow;
        _shatteredBatchRuns = shatteredBatchRuns;
    }

    /// <summary>Windows currently dense.</summary>
    public int DenseWindowCount => _windows.DenseCount;

    // Per window: its counts while dense; Edits counts short sparse edits toward a densify check (negative: postponed),
    // or dense edits toward a sparsify check.
    // WasDense: the window was dense until its counts all fell to 0 (an unmap of shattered memory), so it goes dense again
    // after a few edits instead of a few hundred (NoteSparseEdit).
    private struct Slot : IWindowSlot
    {
        public ushort[]? Counts;
        public int NonZero;
        public int Edits;
        public bool WasDense;

        public readonly bool IsDense => Counts is not null;
    }

    /// <summary>The count of <paramref name="frame"/> (0 if none).</summary>
    public ulong CountAt(ulong frame)
    {
        if (DenseAt(frame >> WindowShift) is { } counts)
        {
            return counts[frame & WindowMask];
        }
        return _runs.TryGetValue(frame, out FrameCount c) ? c.Count : 0;
    }

    /// <summary>Whether <paramref name="frame"/> has a non-zero count.</summary>
    public bool Contains(ulong frame) => CountAt(frame) != 0;

    /// <summary>Whether window <paramref name="window"/> (frames <c>window * WindowFrames</c> on) is dense
    /// (<see cref="FrameFlagMap.MarkRuns"/>'s <c>denseLike</c>).</summary>
    internal bool IsDenseWindow(ulong window) => DenseAt(window) is not null;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private ushort[]? DenseAt(ulong window)
    {
        ref Slot slot = ref _windows.Find(window);
        return System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot) ? null : slot.Counts;
    }

    /// <summary>Of every <paramref name="stride"/>-th run, how many lie in one dense window, and how many were looked at:
    /// a sample of how much of a batch the dense form takes (an unmap sorts and joins a batch that mostly goes to runs).</summary>
    public (int Dense, int Sampled) SampleDense(ReadOnlySpan<PfnRun> runs, int stride)
    {
        int dense = 0;
        int sampled = 0;
        for (int i = 0; i < runs.Length; i += stride)
        {
            ulong first = runs[i].First.Value;
            ulong window = first >> WindowShift;
            sampled++;
            dense += ((first + runs[i].Count - 1) >> WindowShift) == window && DenseAt(window) is not null ? 1 : 0;
        }
        return (dense, sampled);
    }

    // The slot of a dense window, or a null ref: one directory walk for the hot per-run paths (inlined: see Prefetch).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private ref Slot DenseSlot(ulong window) => ref _windows.FindDense(window);

    private ref Slot SlotFor(ulong window) => ref _windows.GetOrAdd(window);

    // A short edit of sparse window `window`: counts toward the densify check.
    private void NoteSparseEdit(ulong window)
    {
        ref Slot slot = ref SlotFor(window);
        if (++slot.Edits > _denseAbove && !_holdDense)
        {
            ConsiderDense(window, ref slot);
        }
    }

    // Counts the runs of sparse window `window` and makes it dense if there are more than _denseAbove (and every count
    // fits a ushort); otherwise schedules the next check after at least half the threshold's edits.
    private void ConsiderDense(ulong window, ref Slot slot)
    {
        ulong ws = window << WindowShift;
        ulong we = ws + WindowMask;
        int runs = 0;
        foreach (Run<FrameCount> r in _runs.Overlapping(ws, we))
        {
            if (r.Value.Count > ushort.MaxValue)
            {
                slot.Edits = ForcedSparse;
                return;
            }
            runs++;
        }
        if (runs <= _denseAbove)
        {
            // The further below the threshold, the later the next count: a window of 16-page runs (~25-60 runs) would
            // otherwise be counted every few dozen pins, ~10 % of a 64 GiB MAP in 16-page runs (measured).
            slot.Edits = runs - (4 * (_denseAbove - runs));
            return;
        }
        ToDense(window, ref slot);
    }

    // Whether every count of sparse window `window` fits the dense form's ushort.
    private bool FitsDense(ulong window)
    {
        ulong ws = window << WindowShift;
        foreach (Run<FrameCount> r in _runs.Overlapping(ws, ws + WindowMask))
        {
            if (r.Value.Count > ushort.MaxValue)
            {
                return false;
            }
        }
        return true;
    }

    // Sparse window `window` into its dense form (every count of its runs fits a ushort: the callers checked).
    private void ToDense(ulong window, ref Slot slot)
    {
        ulong ws = window << WindowShift;
        ulong we = ws + WindowMask;
        ushort[] counts = TakeEmptyCounts();
        int nonZero = 0;
        foreach (Run<FrameCount> r in _runs.Overlapping(ws, we))
        {
            ulong a = Math.Max(r.Start, ws) - ws;
            ulong b = Math.Min(r.Last, we) - ws;
            counts.AsSpan((int)a, (int)(b - a + 1)).Fill((ushort)r.Value.Count);
            nonZero += (int)(b - a + 1);
        }
        _runs.Remove(ws, we);
        slot.Counts = counts;
        slot.NonZero = nonZero;
        slot.Edits = 0;
        slot.WasDense = false;
        _windows.MarkDense(window);
    }

    // The counts of dense windows that emptied, all zero, kept for the next windows to go dense, up to
    // EmptyWindowsKept (0 unless the owner sets it): an UNMAP of memory shattered into 1-page runs empties every window
    // of the pin map its MAP made dense, and the next MAP makes them again, 8 KiB each (6 B per page of a 4 GiB MAP in a
    // 12 GiB host), garbage that with the IOMMU table's leaves made the collector run about twice a MAP+UNMAP pair
    // (issue 16; docs/benchmarks.md, 2026-12-08 "onepage10").
    private ushort[][]? _emptyCounts;
    private int _emptyCountsKept;

    /// <summary>How many emptied dense windows' counts (8 KiB each) the map keeps for windows that go dense later; 0, the
    /// default, keeps none. Beyond it, memory follows the counts.</summary>
    public int EmptyWindowsKept { get; init; }

    private void KeepEmptyCounts(ushort[] counts)
    {
        System.Diagnostics.Debug.Assert(counts.AsSpan().IndexOfAnyExcept((ushort)0) < 0, "only all-zero counts are kept");
        if (_emptyCountsKept < EmptyWindowsKept)
        {
            (_emptyCounts ??= new ushort[EmptyWindowsKept][])[_emptyCountsKept++] = counts;
        }
    }

    /// <summary>Emptied dense windows' counts kept for reuse (for tests).</summary>
    internal int EmptyCountsKeptNow => _emptyCountsKept;

    private ushort[] TakeEmptyCounts()
    {
        if (_emptyCountsKept == 0)
        {
            return new ushort[WindowFrames];
        }
        ushort[] counts = _emptyCounts![--_emptyCountsKept];
        _emptyCounts[_emptyCountsKept] = null!;
        return counts;
    }

    // A dense window's counts back into runs (RunMap.Set joins them with neighbours that continue them).
    private void MakeSparse(ulong window, ref Slot slot)
    {
        ushort[] counts = slot.Counts!;
        ulong ws = window << WindowShift;
        int i = 0;
        while (i < counts.Length)
        {
            ushort c = counts[i];
            int end = SegmentEnd(counts, i);
            if (c != 0)
            {
                _runs.Set(ws + (ulong)i, ws + (ulong)end, new FrameCount(c));
            }
            i = end + 1;
        }
        DropDense(window, ref slot);
    }

    private void DropDense(ulong window, ref Slot slot)
    {
        if (slot.NonZero == 0)
        {
            KeepEmptyCounts(slot.Counts!);
        }
        slot.Counts = null;
        slot.NonZero = 0;
        slot.Edits = 0;
        _windows.MarkSparse(window);
    }

    // After edits of dense window `window`: dropped when empty; back to one run when an edit that gave frames a count
    // filled it with one count (a shattered window whose frames were all freed again, in the free map); every
    // DenseRecheck edits, back to runs if it has few.
    // Inlined into the batch updates (a call a page on shattered memory, see Prefetch for the measurement): the common
    // case only counts the edits; the rest is AfterDenseEditsRare.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void AfterDenseEdits(ulong window, ref Slot slot, int edits, bool grew = false)
    {
        if (slot.NonZero != 0 && !(grew && slot.NonZero == (int)WindowFrames) && slot.Edits + edits < DenseRecheck)
        {
            slot.Edits += edits;
            return;
        }
        AfterDenseEditsRare(window, ref slot, edits, grew);
    }

    private void AfterDenseEditsRare(ulong window, ref Slot slot, int edits, bool grew)
    {
        if (slot.NonZero == 0)
        {
            DropDense(window, ref slot);
            slot.WasDense = true;
            return;
        }
        if (grew && slot.NonZero == (int)WindowFrames && slot.Counts.AsSpan().IndexOfAnyExcept(slot.Counts![0]) < 0)
        {
            MakeSparse(window, ref slot);
            return;
        }
        slot.Edits += edits;
        if (slot.Edits >= DenseRecheck)
        {
            slot.Edits = 0;
            if (CountSegments(slot.Counts!, _sparseBelow) < _sparseBelow)
            {
                MakeSparse(window, ref slot);
            }
        }
    }

    // Non-zero segments of equal counts in a window, counting no further than `limit`.
    private static int CountSegments(ushort[] counts, int limit)
    {
        int n = 0;
        int i = 0;
        while (i < counts.Length && n < limit)
        {
            int end = SegmentEnd(counts, i);
            n += counts[i] != 0 ? 1 : 0;
            i = end + 1;
        }
        return n;
    }

    // The last index of the segment of counts equal to counts[i] that starts at or before i.
    private static int SegmentEnd(ushort[] counts, int i)
    {
        int other = counts.AsSpan(i + 1).IndexOfAnyExcept(counts[i]);
        return other < 0 ? counts.Length - 1 : i + other;
    }

    // The first index of the segment of counts equal to counts[i] that contains i.
    private static int SegmentStart(ushort[] counts, int i)
    {
        int other = counts.AsSpan(0, i).LastIndexOfAnyExcept(counts[i]);
        return other + 1;
    }

    /// <summary>The managed bytes the map occupies: the run map's nodes, the dense windows, the directory (memory
    /// probes; see <see cref="RunMap{T}.ApproximateBytes"/>).</summary>
    internal long ApproximateBytes()
    {
        const long ArrayHeader = 24;
        long bytes = _runs.ApproximateBytes() + _windows.ApproximateBytes(16);
        foreach (Slot[]? block in _windows.Blocks)
        {
            if (block is null)
            {
                continue;
            }
            foreach (Slot s in block)
            {
                bytes += s.Counts is null ? 0 : ArrayHeader + (2L * s.Counts.Length);
            }
        }
        return bytes;
    }

    /// <summary>Leaves of the run map in packed form (memory probes).</summary>
    internal int PackedLeafCount() => _runs.PackedLeafCount();

    /// <summary>Maximal runs, as a <see cref="RunMap{T}"/> of the same counts would hold (memory probes, tests).</summary>
    public int Count
    {
        get
        {
            int n = 0;
            foreach (Run<FrameCount> r in All())
            {
                _ = r;
                n++;
            }
            return n;
        }
    }

    /// <summary>Checks the representation: the run map's invariants, no run inside a dense window, every dense window's
    /// non-zero tally (tests).</summary>
    internal void AssertValid()
    {
        _runs.AssertValid();
        int dense = 0;
        foreach (Run<Presence> w in _windows.DenseRuns)
        {
            for (ulong window = w.Start; window <= w.Last; window++)
            {
                dense++;
                ushort[] counts = DenseAt(window) ?? throw new InvalidOperationException($"window {window} listed dense without counts");
                ref Slot slot = ref SlotFor(window);
                int nonZero = 0;
                foreach (ushort c in counts)
                {
                    nonZero += c != 0 ? 1 : 0;
                }
                if (nonZero != slot.NonZero || nonZero == 0)
                {
                    throw new InvalidOperationException($"window {window}: {slot.NonZero} non-zero recorded, {nonZero} found");
                }
                ulong ws = window << WindowShift;
                if (_runs.Overlaps(ws, ws + WindowMask))
                {
                    throw new InvalidOperationException($"window {window} is dense and has runs");
                }
            }
        }
        if (dense != _windows.DenseCount)
        {
            throw new InvalidOperationException($"{_windows.DenseCount} dense windows recorded, {dense} listed");
        }
    }
}
