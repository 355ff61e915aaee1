using System.Numerics;
using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>
/// A page flag per host frame (PG_dirty), held as runs where it is set over contiguous memory and as a bitmap per
/// aligned window of <see cref="WindowFrames"/> frames where memory has shattered: <see cref="FrameCountMap"/>'s two
/// forms for a bit instead of a count, at one bit per frame instead of a <c>ushort</c> (issue 16).
/// </summary>
/// <remarks>
/// <para>Why, measured (docs/benchmarks.md, 2026-12-07 "onepage7"): on memory shattered into 1-page runs an UNMAP's
/// dirty marks were a batch pass over the dirty map's dense <c>ushort</c> windows, a random count per frame: 6 MiB of
/// them at 4 GiB in 12 GiB, 37 MB at 64 GiB in 72, out of every cache. With that pass left out the UNMAP of 4 GiB took
/// 0.045-0.067 s of CPU instead of 0.074-0.081. As bits the same windows are 384 KiB at 4 GiB (this machine's L2 is
/// 512 KiB) and 2.3 MiB at 64 GiB: the marks land in cache (UNMAP of 4 GiB, least CPU of three alternations under
/// load: 0.056 → 0.047 s), and the UNMAP's peak heap falls by ~2 B per page at 64 GiB (29.3 → 27.2). Guest huge
/// pages under the ushort windows were tried first and did not help (the same section, tried and dropped).</para>
/// <para>Forms, per window: sparse (the default): the window's set frames are runs of a <see cref="RunMap{T}"/>, a
/// run reaching across any number of sparse windows. Dense: 64 words of bits owned by the window, found through a
/// two-level directory indexed by <c>frame &gt;&gt; WindowShift</c>; the run map holds no key of a dense window.</para>
/// <para>When a window switches: a batch of marks (<see cref="MarkRuns"/>) makes a window dense where the pin map given
/// as <c>denseLike</c> is dense (an unpin dirties the frames it unpins, so where the pins shattered the dirty bits do
/// alike), and every <see cref="DenseAbove"/> short edits of a sparse window its runs are counted and, above
/// <see cref="DenseAbove"/> (a run costs ~32 B in the run map's leaves, the window's bits 536 B), it goes dense. A dense
/// window whose bits all clear is dropped; one whose bits all come to be set goes back to one run. A dense window
/// with few runs otherwise stays dense: 536 B a window of 16 MiB.</para>
/// <para>Reads answer what one <see cref="RunMap{T}"/> of the same frames would. Not thread-safe:
/// <see cref="PhysicalMemory"/>'s lock protects it.</para>
/// </remarks>
internal sealed class FrameFlagMap
{
    /// <summary>log2 of the frames per window (the count maps' windows).</summary>
    public const int WindowShift = FrameCountMap.WindowShift;

    /// <summary>Frames per window.</summary>
    public const ulong WindowFrames = 1UL << WindowShift;

    /// <summary>Runs above which a sparse window goes dense, and its short edits between two counts of its runs.</summary>
    public const int DenseAbove = 16;

    private const ulong WindowMask = WindowFrames - 1;
    private const int Words = (int)(WindowFrames / 64);

    private readonly RunMap<Presence> _runs = new();
    private WindowDirectory<Slot> _windows = new();

    // Set while a batch applies: its runs were sorted into dense and sparse windows up front, so no window may turn
    // dense under it.
    private bool _holdDense;

    // Per window: its bits while dense, how many are set; short edits while sparse toward the next count of its runs.
    private struct Slot : IWindowSlot
    {
        public ulong[]? Bits;
        public int Set;
        public int Edits;

        public readonly bool IsDense => Bits is not null;
    }

    /// <summary>Windows currently dense.</summary>
    public int DenseWindowCount => _windows.DenseCount;

    /// <summary>Whether <paramref name="frame"/>'s flag is set.</summary>
    public bool Contains(ulong frame)
    {
        if (BitsAt(frame >> WindowShift) is { } bits)
        {
            return (bits[(int)(frame & WindowMask) >> 6] & (1UL << (int)(frame & 63))) != 0;
        }
        return _runs.TryGetValue(frame, out _);
    }

    /// <summary>Whether every frame of <c>[first, last]</c> has its flag set.</summary>
    public bool AllSet(ulong first, ulong last)
    {
        ulong cursor = first;
        while (true)
        {
            ulong end = _windows.NextStretch(cursor, last, out bool dense);
            if (dense ? !AllBits(BitsAt(cursor >> WindowShift)!, (int)(cursor & WindowMask), (int)(end & WindowMask)) : !_runs.Covers(cursor, end))
            {
                return false;
            }
            if (end >= last)
            {
                return true;
            }
            cursor = end + 1;
        }
    }

    /// <summary>Sets the flag of every frame of <c>[first, last]</c>.</summary>
    public void Set(ulong first, ulong last) => Update(first, last, set: true);

    /// <summary>Clears the flag of every frame of <c>[first, last]</c>.</summary>
    public void Clear(ulong first, ulong last)
    {
        _markedOne = ulong.MaxValue;
        Update(first, last, set: false);
    }

    // The frame the last one-frame SetUnlessAllSet left set, until the next Clear (the only call that takes a flag away;
    // ulong.MaxValue: none). The 4 KiB pair dirties the same frame at every UNMAP: AllSet's lookup in the run map was
    // 1.7 % of the pair's samples (~10 ns, perf of --pair-loop; docs/benchmarks.md, pair10).
    private ulong _markedOne = ulong.MaxValue;

    /// <summary>Sets the flag of every frame of <c>[first, last]</c> unless all are set already (an unpin's dirtying: a
    /// frame dirtied again is not written). The same flags as <see cref="Set"/>.</summary>
    public void SetUnlessAllSet(ulong first, ulong last)
    {
        if (first == last && first == _markedOne)
        {
            System.Diagnostics.Debug.Assert(AllSet(first, last), "no Clear since the frame was last marked");
            return;
        }
        if (!AllSet(first, last))
        {
            Set(first, last);
        }
        if (first == last)
        {
            _markedOne = first;
        }
    }

    /// <summary>Sets the flag of every frame of each run, in any order (a frame may appear twice): a dirtying unpin's
    /// batch. Given <paramref name="denseLike"/> (the pin map of the frames being unpinned), a sparse window that is dense
    /// there goes dense here before the marks land; the runs in sparse windows are sorted and applied in one pass over
    /// the run map's leaves.</summary>
    public void MarkRuns(ReadOnlySpan<PfnRun> runs, FrameCountMap? denseLike = null)
    {
        PfnRun[]? pending = null;
        int np = 0;
        _holdDense = true;
        for (int i = 0; i < runs.Length; i++)
        {
            PfnRun run = runs[i];
            ulong first = run.First.Value;
            ulong last = first + run.Count - 1;
            ulong window = first >> WindowShift;
            if ((last >> WindowShift) == window)
            {
                ref Slot slot = ref DenseSlot(window);
                if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot) && denseLike is { DenseWindowCount: > 0 } && denseLike.IsDenseWindow(window))
                {
                    slot = ref ToDense(window);
                }
                if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
                {
                    int k = (int)(first & WindowMask);
                    if ((k & 63) + (int)run.Count <= 64)
                    {
                        // Inside one word (every run of memory shattered into runs of 1, 2, 4 or 16 pages): one
                        // read-modify-write, no range loop.
                        ref ulong word = ref Word(slot.Bits!, k >> 6);
                        ulong bits = (run.Count == 64 ? ulong.MaxValue : (1UL << (int)run.Count) - 1) << (k & 63);
                        ulong old = word;
                        if ((old & bits) != bits)
                        {
                            word = old | bits;
                            AfterGrow(window, ref slot, BitOperations.PopCount(bits & ~old));
                        }
                    }
                    else
                    {
                        UpdateDense(window, ref slot, first, last, set: true);
                    }
                    continue;
                }
            }
            (pending ??= System.Buffers.ArrayPool<PfnRun>.Shared.Rent(runs.Length))[np++] = run;
        }
        _holdDense = false;
        if (pending is null)
        {
            return;
        }
        try
        {
            MarkSparse(pending, np);
        }
        finally
        {
            System.Buffers.ArrayPool<PfnRun>.Shared.Return(pending);
        }
    }

    /// <summary>Sets the flag of each frame whose bit is set in <paramref name="bits"/> (window
    /// <paramref name="window"/>'s 64 words, as <see cref="FrameBitSet"/> holds them), the window made dense first if it
    /// is not (the caller's pins are dense there, as <see cref="MarkRuns"/>' <c>denseLike</c>): a word OR per 64 frames
    /// instead of a mark per frame. The same bits as <see cref="MarkRuns"/> of those frames.</summary>
    public void MarkBits(ulong window, ReadOnlySpan<ulong> bits)
    {
        ref Slot slot = ref DenseSlot(window);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
        {
            slot = ref ToDense(window);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
            {
                // Every frame of the window already set (one run over it).
                return;
            }
        }
        ulong[] mine = slot.Bits!;
        int grown = 0;
        for (int w = 0; w < bits.Length; w++)
        {
            ref ulong word = ref Word(mine, w);
            ulong add = bits[w] & ~word;
            if (add != 0)
            {
                word |= add;
                grown += BitOperations.PopCount(add);
            }
        }
        if (grown != 0)
        {
            AfterGrow(window, ref slot, grown);
        }
    }

    // The runs of a batch that did not land in a dense window: sorted, overlapping and adjacent ones joined (a flag is
    // set once however often a frame is named), the stretches inside dense windows set there and the rest applied to
    // the run map in one pass; then each short run counts toward its window's densify check.
    private void MarkSparse(PfnRun[] pending, int count)
    {
        Span<PfnRun> runs = pending.AsSpan(0, count);
        FrameRunSort.SortUnlessOrdered(runs);
        int n = 0;
        for (int i = 0; i < runs.Length; i++)
        {
            if (n > 0 && runs[i].First.Value <= runs[n - 1].Last.Value + 1)
            {
                ulong lastEnd = Math.Max(runs[n - 1].Last.Value, runs[i].Last.Value);
                runs[n - 1] = runs[n - 1] with { Count = lastEnd - runs[n - 1].First.Value + 1 };
            }
            else
            {
                runs[n++] = runs[i];
            }
        }
        if (_windows.DenseCount != 0)
        {
            // A joined run may reach into a dense window (runs across windows, rare): those go piece by piece.
            int kept = 0;
            foreach (PfnRun run in runs[..n])
            {
                if (AnyDense(run.First.Value, run.Last.Value))
                {
                    Update(run.First.Value, run.Last.Value, set: true);
                }
                else
                {
                    runs[kept++] = run;
                }
            }
            n = kept;
        }
        var batch = new MarkBatch(pending, n);
        _runs.UpdateSorted(ref batch);
        foreach (PfnRun run in runs[..n])
        {
            NoteIfShort(run.First.Value, run.Last.Value);
        }
    }

    // Every piece of a sorted batch set (RunMap.UpdateSorted).
    private readonly struct MarkBatch(PfnRun[] runs, int count) : IRunBatch<Presence>
    {
        public int Count => count;

        public ulong StartOf(int i) => runs[i].First.Value;

        public ulong LastOf(int i) => runs[i].Last.Value;

        public bool Apply(ulong start, ulong last, bool mapped, Presence value, out Presence result)
        {
            result = default;
            return true;
        }
    }

    private void Update(ulong first, ulong last, bool set)
    {
        ulong cursor = first;
        while (true)
        {
            ulong end = _windows.NextStretch(cursor, last, out bool dense);
            if (dense)
            {
                ulong window = cursor >> WindowShift;
                UpdateDense(window, ref DenseSlot(window), cursor, end, set);
            }
            else
            {
                if (set)
                {
                    _runs.Set(cursor, end, default);
                }
                else
                {
                    _runs.Remove(cursor, end);
                }
                NoteIfShort(cursor, end);
            }
            if (end >= last)
            {
                return;
            }
            cursor = end + 1;
        }
    }

    // Sets or clears [first, last] inside dense window `window`, then drops it when empty or turns it back into a run
    // when full.
    private void UpdateDense(ulong window, ref Slot slot, ulong first, ulong last, bool set)
    {
        ulong[] bits = slot.Bits!;
        int a = (int)(first & WindowMask);
        int b = (int)(last & WindowMask);
        int changed = 0;
        for (int w = a >> 6; w <= b >> 6; w++)
        {
            ulong mask = WordMask(w, a, b);
            ulong old = bits[w];
            ulong now = set ? old | mask : old & ~mask;
            changed += BitOperations.PopCount(old ^ now);
            bits[w] = now;
        }
        if (set)
        {
            AfterGrow(window, ref slot, changed);
        }
        else
        {
            slot.Set -= changed;
            if (slot.Set == 0)
            {
                DropDense(window, ref slot);
            }
        }
    }

    // After `grown` bits of dense window `window` were set: back to one run once every bit is.
    private void AfterGrow(ulong window, ref Slot slot, int grown)
    {
        slot.Set += grown;
        if (slot.Set == (int)WindowFrames)
        {
            DropDense(window, ref slot);
            ulong ws = window << WindowShift;
            _runs.Set(ws, ws + WindowMask, default);
        }
    }

    // The bits of word `w` that lie in [a, b] (window indices).
    private static ulong WordMask(int w, int a, int b)
    {
        int lo = Math.Max(a, w << 6) - (w << 6);
        int hi = Math.Min(b, (w << 6) + 63) - (w << 6);
        ulong upTo = hi == 63 ? ulong.MaxValue : (1UL << (hi + 1)) - 1;
        return upTo & (ulong.MaxValue << lo);
    }

    private static bool AllBits(ulong[] bits, int a, int b)
    {
        for (int w = a >> 6; w <= b >> 6; w++)
        {
            ulong mask = WordMask(w, a, b);
            if ((bits[w] & mask) != mask)
            {
                return false;
            }
        }
        return true;
    }

    // A short edit of a sparse window counts toward its densify check (a range inside one window only).
    private void NoteIfShort(ulong first, ulong last)
    {
        ulong window = first >> WindowShift;
        if ((last >> WindowShift) != window || _holdDense)
        {
            return;
        }
        ref Slot slot = ref SlotFor(window);
        if (++slot.Edits <= DenseAbove)
        {
            return;
        }
        slot.Edits = 0;
        ulong ws = window << WindowShift;
        int runs = 0;
        foreach (Run<Presence> r in _runs.Overlapping(ws, ws + WindowMask))
        {
            _ = r;
            if (++runs > DenseAbove)
            {
                ToDense(window);
                return;
            }
        }
    }

    // Sparse window `window` into bits (its runs copied, then removed from the run map), or a null ref for a window
    // whose frames are all set (one run: the dense form would hold no more than it, and marks there change nothing).
    private ref Slot ToDense(ulong window)
    {
        ulong ws = window << WindowShift;
        ulong we = ws + WindowMask;
        if (_runs.Covers(ws, we))
        {
            return ref System.Runtime.CompilerServices.Unsafe.NullRef<Slot>();
        }
        ref Slot slot = ref SlotFor(window);
        var bits = new ulong[Words];
        int set = 0;
        foreach (Run<Presence> r in _runs.Overlapping(ws, we))
        {
            int a = (int)(Math.Max(r.Start, ws) - ws);
            int b = (int)(Math.Min(r.Last, we) - ws);
            for (int w = a >> 6; w <= b >> 6; w++)
            {
                bits[w] |= WordMask(w, a, b);
            }
            set += b - a + 1;
        }
        if (set != 0)
        {
            _runs.Remove(ws, we);
        }
        slot.Bits = bits;
        slot.Set = set;
        slot.Edits = 0;
        _windows.MarkDense(window);
        return ref slot;
    }

    private void DropDense(ulong window, ref Slot slot)
    {
        slot.Bits = null;
        slot.Set = 0;
        slot.Edits = 0;
        _windows.MarkSparse(window);
    }

    private ulong[]? BitsAt(ulong window)
    {
        ref Slot slot = ref _windows.Find(window);
        return System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot) ? null : slot.Bits;
    }

    // The slot of a dense window, or a null ref.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private ref Slot DenseSlot(ulong window) => ref _windows.FindDense(window);

    private ref Slot SlotFor(ulong window) => ref _windows.GetOrAdd(window);

    // Word `w` of a window's bits without a bounds check: every Bits array is Words long and `w` comes from an index
    // masked with WindowMask (as FrameCountMap.Element, for the same reason: the check read the array's header line).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ref ulong Word(ulong[] bits, int w)
    {
        System.Diagnostics.Debug.Assert(bits.Length == Words && (uint)w < Words);
        return ref System.Runtime.CompilerServices.Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(bits), w);
    }

    // Whether any window of [first, last] is dense.
    private bool AnyDense(ulong first, ulong last) => _windows.AnyDense(first, last);

    /// <summary>The maximal runs of set frames, in frame order (tests, memory probes).</summary>
    public IEnumerable<(ulong Start, ulong Last)> All()
    {
        bool open = false;
        ulong start = 0;
        ulong end = 0;
        foreach ((ulong s, ulong l) in Pieces())
        {
            if (open && s == end + 1)
            {
                end = l;
                continue;
            }
            if (open)
            {
                yield return (start, end);
            }
            open = true;
            start = s;
            end = l;
        }
        if (open)
        {
            yield return (start, end);
        }
    }

    // The run map's runs and the dense windows' stretches of set bits, in frame order (not joined).
    private IEnumerable<(ulong Start, ulong Last)> Pieces()
    {
        var dense = new List<ulong>();
        foreach (Run<Presence> w in _windows.DenseRuns)
        {
            for (ulong x = w.Start; x <= w.Last; x++)
            {
                dense.Add(x);
            }
        }
        int di = 0;
        foreach (Run<Presence> r in _runs.All())
        {
            while (di < dense.Count && (dense[di] << WindowShift) < r.Start)
            {
                foreach ((ulong, ulong) p in Stretches(dense[di++]))
                {
                    yield return p;
                }
            }
            yield return (r.Start, r.Last);
        }
        while (di < dense.Count)
        {
            foreach ((ulong, ulong) p in Stretches(dense[di++]))
            {
                yield return p;
            }
        }
    }

    private IEnumerable<(ulong Start, ulong Last)> Stretches(ulong window)
    {
        ulong[] bits = BitsAt(window)!;
        ulong ws = window << WindowShift;
        int i = 0;
        while (i < (int)WindowFrames)
        {
            if ((bits[i >> 6] & (1UL << (i & 63))) == 0)
            {
                i++;
                continue;
            }
            int j = i;
            while (j + 1 < (int)WindowFrames && (bits[(j + 1) >> 6] & (1UL << ((j + 1) & 63))) != 0)
            {
                j++;
            }
            yield return (ws + (ulong)i, ws + (ulong)j);
            i = j + 1;
        }
    }

    /// <summary>Maximal runs of set frames (memory probes, tests).</summary>
    public int Count => All().Count();

    /// <summary>The managed bytes the map occupies: the run maps' nodes, the dense windows' bits, the directory.</summary>
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
                bytes += s.Bits is null ? 0 : ArrayHeader + (8L * Words);
            }
        }
        return bytes;
    }

    /// <summary>Leaves of the run map in packed form (memory probes).</summary>
    internal int PackedLeafCount() => _runs.PackedLeafCount();

    /// <summary>Checks the representation: the run map's invariants, no run inside a dense window, every dense window's
    /// tally of set bits, none empty or full (tests).</summary>
    internal void AssertValid()
    {
        _runs.AssertValid();
        int dense = 0;
        foreach (Run<Presence> w in _windows.DenseRuns)
        {
            for (ulong window = w.Start; window <= w.Last; window++)
            {
                dense++;
                ulong[] bits = BitsAt(window) ?? throw new InvalidOperationException($"window {window} listed dense without bits");
                int set = 0;
                foreach (ulong word in bits)
                {
                    set += BitOperations.PopCount(word);
                }
                ref Slot slot = ref SlotFor(window);
                if (set != slot.Set || set == 0 || set == (int)WindowFrames)
                {
                    throw new InvalidOperationException($"window {window}: {slot.Set} set recorded, {set} found");
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
