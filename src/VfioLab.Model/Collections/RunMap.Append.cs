namespace VfioLab.Collections;

// Runs inserted in key order into free keys, a leaf at a time (InsertSorted): the IOPTE runs of one GUP batch mapped
// into an IOMMU table (issue 16).
//
// Why: on memory shattered into 1-page runs a MAP inserts one IOPTE run per page, at consecutive IOVAs, into the end
// of a packed leaf; one Insert per run was a descent from the root, the neighbour tests and the append each, about
// 45 ns a page (measured with `--shattered-memory`, docs/benchmarks.md, 2026-12-07). Here a descent finds the leaf of
// the batch's next run, and as long as the runs go at the end of that leaf, below the separator that bounds it and
// clear of the next leaf's first run, each is appended where it lies (packed leaves stay packed, InsertAt's rule) or
// extends the leaf's last run when it continues it. Anything else (a run before the leaf's last run, a full leaf, a
// run touching the next leaf, an empty map) takes the ordinary one-run insert, which splits, lends and joins as it
// always does; the loop then descends again. So the tree ends exactly as one Insert per run would leave it.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Maps each of <paramref name="runs"/> (ascending, disjoint, and no key of them mapped): key
    /// <c>Start + i</c> of a run gets <c>Value.Advance(i)</c>, and neighbours merge as after <see cref="Insert"/>.
    /// Ends exactly as one <see cref="Insert"/> per run in order would, with one descent per leaf the runs are
    /// appended to rather than one per run.</summary>
    public void InsertSorted(ReadOnlySpan<Run<T>> runs)
    {
        var source = new SpanRuns(runs);
        InsertSorted(ref source);
    }

    /// <summary><see cref="InsertSorted(ReadOnlySpan{Run{T}})"/> of the runs a source computes as they are read (an IOMMU
    /// table's IOPTE runs straight from a batch's chunks, without an array of runs written and read back).</summary>
    public void InsertSorted<TRuns>(ref TRuns runs)
        where TRuns : struct, IRunSource<T>, allows ref struct
    {
        CloseHole();
        int i = 0;
        while (i < runs.Length)
        {
            Run<T> r = runs[i];
            System.Diagnostics.Debug.Assert(r.Start <= r.Last && (i == 0 || runs[i - 1].Last < r.Start), "runs must be ascending and disjoint");
            System.Diagnostics.Debug.Assert(!Overlaps(r.Start, r.Last), "InsertSorted over mapped keys");
            if (_root is null)
            {
                InsertChecked(r.Start, r.Last, r.Value, check: false);
                i++;
                continue;
            }
            Leaf leaf = Descend(r.Start, record: true);
            if (Rank(leaf, r.Start) != leaf.Count)
            {
                // The run goes before a run of this leaf: the ordinary insert.
                InsertChecked(r.Start, r.Last, r.Value, check: false);
                i++;
                continue;
            }
            // Starts routed to this leaf stay below the separator of the next subtree on the path; a run must also end
            // before the next leaf's first run without touching it (touching may join it: the ordinary insert decides).
            ulong bound = UpperSeparator();
            if (leaf.Next is { } next)
            {
                bound = Math.Min(bound, next.FirstStart);
            }
            int appended = 0;
            while (leaf.Count < _capacity)
            {
                if (r.Start >= bound || r.Last >= bound - 1)
                {
                    break;
                }
                int c = leaf.Count - 1;
                if (PackedForm && leaf.Packed is { } packed && r.Start == packed[0] + ((ulong)leaf.Count * packed[1]) &&
                    r.Last - r.Start == packed[1] - 1 && T.TryPack(r.Value, out ulong word) &&
                    !T.Unpack(packed[Leaf.Header + c]).Advance(packed[1]).Equals(r.Value))
                {
                    // The shattered case: one more run of the packed leaf's length, back to back with its last run and not
                    // continuing it, is one word written (what InsertAt's dense append does, without its re-checks).
                    packed[Leaf.Header + leaf.Count] = word;
                    leaf.Count++;
                    Count++;
                }
                else if (leaf.LastAt(c) == r.Start - 1 && leaf.ValueAt(c).Advance(r.Start - leaf.StartAt(c)).Equals(r.Value))
                {
                    // The run continues the leaf's last run (an IOPTE run physically contiguous with the one before).
                    Open(leaf);
                    leaf.Lasts[c] = r.Last;
                }
                else
                {
                    InsertAt(leaf, leaf.Count, r.Start, r.Last, r.Value);
                    Count++;
                }
                appended++;
                if (++i == runs.Length)
                {
                    break;
                }
                r = runs[i];
                System.Diagnostics.Debug.Assert(runs[i - 1].Last < r.Start, "runs must be ascending and disjoint");
            }
            if (appended != 0)
            {
                _version++;
            }
            else if (leaf.Count == _capacity && leaf.Next is null && TryAppendPackedLeaf(leaf, ref runs, ref i))
            {
                // A whole leaf's worth of the batch went into a new packed leaf after the map's last one.
            }
            else
            {
                // Full, or the run reaches the bound: the ordinary insert (a split, a lend or a join with the next leaf).
                InsertChecked(r.Start, r.Last, r.Value, check: false);
                i++;
            }
        }
    }

    // The map's last leaf `full` is full and the batch goes on from runs[i]: if the next _capacity runs are all one
    // unit long, back to back, packable and none continuing the one before it (nor the first continuing the leaf's last
    // run), they become a new packed leaf after it, written word by word, and i moves past them. This is exactly what
    // one Insert per run leaves there: a split at the map's end leaves the full leaf full and starts a new one, which
    // fills and is packed when it fills (InsertAt, TryPack), and the spare arrays end where they would. Why: on memory
    // shattered into 1-page runs every leaf of a MAP's IOPTE table (and of populate's page table) was filled in the
    // sparse form, three arrays a run, then copied into the packed one; written directly, the MAP of 4 GiB on 1-page
    // runs took 0.066-0.070 s of CPU instead of 0.074-0.075 (~8 ns/page, three alternations under load; issue 16,
    // docs/benchmarks.md, 2026-12-07 "onepage4"). Only
    // whole leaves: a batch's tail goes the ordinary way, so every form and byte count stays what it was.
    private bool TryAppendPackedLeaf<TRuns>(Leaf full, ref TRuns runs, ref int i)
        where TRuns : struct, IRunSource<T>, allows ref struct
    {
        if (!PackedForm || runs.Length - i < _capacity)
        {
            return false;
        }
        Run<T> r = runs[i];
        ulong unit = r.Last - r.Start + 1;
        int c = full.Count - 1;
        if (unit == 0 || (full.LastAt(c) == r.Start - 1 && full.ValueAt(c).Advance(r.Start - full.StartAt(c)).Equals(r.Value)))
        {
            return false;
        }
        // A kept leaf's array is written in place (its words are garbage until the leaf is taken); the spare array,
        // if any, first, as before the free list.
        Leaf? kept = _sparePacked is null ? _freeLeaves : null;
        ulong[] packed = kept?.Packed ?? _sparePacked ?? new ulong[_capacity + Leaf.Header];
        if (kept is null)
        {
            _sparePacked = packed;
        }
        ulong start = r.Start;
        T before = default;
        // The source's own test where it has one (an IOMMU table's chunks: one compare and an OR a run), else each run's.
        for (int k = runs.TryPackUnits(i, start, unit, packed.AsSpan(Leaf.Header, _capacity)) ? _capacity : 0; k < _capacity; k++)
        {
            Run<T> x = runs[i + k];
            if (x.Start != start + ((ulong)k * unit) || x.Last - x.Start != unit - 1 || (k != 0 && before.Advance(unit).Equals(x.Value)) ||
                !T.TryPack(x.Value, out packed[Leaf.Header + k]))
            {
                return false;
            }
            before = x.Value;
        }
        Leaf leaf;
        if (kept is not null)
        {
            leaf = TakeFreedLeaf()!;
            leaf.Count = _capacity;
            leaf.Prev = full;
        }
        else
        {
            _sparePacked = null;
            leaf = new Leaf([], [], []) { Packed = packed, Count = _capacity, Prev = full };
        }
        leaf.Base = start;
        leaf.Unit = unit;
        full.Next = leaf;
        InsertChild(_height - 1, start, leaf);
        Count += _capacity;
        _version++;
        i += _capacity;
        return true;
    }

    // The runs of a span, as a source.
    private readonly ref struct SpanRuns(ReadOnlySpan<Run<T>> runs) : IRunSource<T>
    {
        private readonly ReadOnlySpan<Run<T>> _runs = runs;

        public int Length => _runs.Length;

        public Run<T> this[int i] => _runs[i];

        public bool TryPackUnits(int i, ulong start, ulong unit, Span<ulong> words) => false;
    }

    // The exclusive upper bound of the starts the recorded path's leaf may hold: the separator of the nearest subtree to
    // its right on the path, or none (2^64-1, which no run's start below it can reach without ending there).
    private ulong UpperSeparator()
    {
        for (int depth = _height - 1; depth >= 0; depth--)
        {
            Inner inner = _pathNodes![depth];
            int slot = _pathSlots![depth];
            if (slot + 1 < inner.Count)
            {
                return inner.Keys[slot + 1];
            }
        }
        return ulong.MaxValue;
    }
}
