namespace VfioLab.Collections;

// One run in and one run out of the middle of a sparse leaf that needs no merge, split or rebalance: the lane of a 4 KiB
// MAP_DMA and UNMAP_DMA in an IOMMU table of many runs (issue 16's pair). The leaf's shift is the general one
// (Leaf.ShiftRight/ShiftLeft, managed moves: RunMap.Moves.cs), the removal's deferred in a hole that the next insert of a
// run going there refills without any shift (below); what the lane skips is the general insert's and removal's
// handling of merges and underfull leaves, which a run between other mappings never needs: the pair was ~25 ns (3 %)
// slower through TryInsert and TryRemoveExact (--pair-loop, 2026-12-07, same sitting).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // The finger: the leaf a descent of the last one-run insert or removal found, and the keys [_fingerLow, _fingerHigh]
    // a descent routes to it (bounded by the separators on that descent's path), valid while the map is unchanged since
    // (_fingerVersion == _version: every change of the map bumps _version, as its enumerators rely on). A 4 KiB MAP_DMA
    // inserts its IOPTE run and the UNMAP_DMA that follows removes it from the same leaf, and the next MAP inserts it
    // there again: the pair's two descents of a table of 65,535 runs (~20 ns each at tier 1, --pair-ladder) become
    // two range tests (issue 16; docs/benchmarks.md, 2026-12-07 pair6). Debug builds check every use against a descent.
    private Leaf? _finger;
    private int _fingerVersion;
    private ulong _fingerLow;
    private ulong _fingerHigh;

    // The hole: TryRemoveExactOne's removal of the run at [_holePos] of _hole, done in every respect (the map's Count,
    // its version, the value handed back) but the shift of the leaf's later entries down over it, which waits: the leaf
    // keeps the run in its arrays and its Count, until the next TryInsertOne puts a run exactly there (it overwrites the
    // slot: no shift either way) or anything else touches the map (CloseHole does the shift first, so every other path
    // sees the leaf exactly as the removal would have left it). A 4 KiB UNMAP_DMA and the MAP_DMA of the same IOVA that
    // follows (issue 16's pair) moved the leaf's later entries down and back up, three arrays each way: ~1.9 ns per
    // entry behind the slot per pair, ~57 ns of a ~640 ns pair at the probe's slot (--pair-ladder, the lead's idle run,
    // 2026-12-07; docs/benchmarks.md, pair8). Null when there is none. Every read closes it too, so a map whose owner
    // takes holes (an IOMMU table) must not be read by two threads at once: IommuDomain reads and writes its table under
    // its one exclusive lock.
    private Leaf? _hole;
    private int _holePos;

    // Where the last one-run insert put its run (the slot of _onePosLeaf), while the map is unchanged since
    // (_onePosVersion == _version): the removal of that run that follows (a 4 KiB UNMAP_DMA after its MAP_DMA) takes
    // the slot without the leaf's binary search, whose branches the pair mispredicts: ~17 % of UnmapUnpinLocked's own
    // samples sat on it (perf of --pair-loop, block level; docs/benchmarks.md, pair10).
    private Leaf? _onePosLeaf;
    private int _onePos;
    private int _onePosVersion;

    /// <summary>Whether a <see cref="TryRemoveExactOne"/> has left its hole open (for tests).</summary>
    internal bool HasPendingRemoval => _hole is not null;

    // Shifts out the pending removal's run, if any: the first thing every path but the one-run insert and removal does.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void CloseHole()
    {
        if (_hole is not null)
        {
            ShiftOutHole();
        }
    }

    // The removal's deferred shift, exactly as TryRemoveExactOne did it before the hole: the map's version and Count
    // already tell the removal, so nothing else changes.
    private void ShiftOutHole()
    {
        Leaf at = _hole!;
        int pos = _holePos;
        _hole = null;
        int left = at.Count - 1;
        at.ShiftLeft(pos + 1, left - pos, 1);
        at.Count = left;
        at.ClearTail(1);
    }

    // TryInsertOne of a run that goes exactly where the hole is (the hole's leaf, which the removal left as the finger,
    // a descent for start reaches; between the hole's neighbours, continuing neither): the slot is overwritten and the
    // hole is gone. False, with nothing changed, when the run goes anywhere else, overlaps a neighbour or joins one: the
    // caller closes the hole and takes the ordinary path, which then gives the answer. Tested against the finger's
    // bounds only, no descent: a MAP elsewhere (the moving pair) pays one range test for the hole before its own descent.
    private bool TryFillHole(Leaf at, ulong start, ulong last, T value)
    {
        if (!ReferenceEquals(_finger, at) || _fingerVersion != _version || start < _fingerLow || start > _fingerHigh)
        {
            return false;
        }
        System.Diagnostics.Debug.Assert(ReferenceEquals(Descend(start, record: false), at), "the finger is the leaf a descent reaches");
        int pos = _holePos;
        // The run the removal took out is still in the slot (only the shift waits): the same run put back (the 4 KiB
        // pair's MAP of the IOVA and frame its UNMAP took out) stood apart from the same neighbours, since every other
        // change of the map closes the hole first, so it needs no neighbour test (two neighbour reads and two join
        // tests, ~4 ns of the ladder's RunMap<IopteRun> insert+remove one; docs/benchmarks.md, pair12).
        bool same = at.Keys[pos] == start && at.Lasts[pos] == last && at.Values[pos].Equals(value);
        System.Diagnostics.Debug.Assert(!same || Between(at, pos, pos + 1, start, last, value) == Neighbours.Apart, "the run taken out stood apart");
        if (!same && Between(at, pos, pos + 1, start, last, value) != Neighbours.Apart)
        {
            return false;
        }
        _hole = null;
        _version++;
        at.Set(pos, start, last, value);
        return OneRunPlaced(at, pos);
    }

    // The leaf a descent for `start` reaches: the finger's where it is valid and covers start (`fresh` false: no path
    // recorded), else a recorded descent's (`fresh` true), which becomes the finger.
    private Leaf DescendForOne(ulong start, out bool fresh)
    {
        if (_finger is { } f && _fingerVersion == _version && start >= _fingerLow && start <= _fingerHigh)
        {
            System.Diagnostics.Debug.Assert(ReferenceEquals(Descend(start, record: false), f), "the finger is the leaf a descent reaches");
            fresh = false;
            return f;
        }
        Leaf at = Descend(start, record: true);
        ulong low = 0;
        ulong high = ulong.MaxValue;
        bool haveLow = false;
        bool haveHigh = false;
        for (int depth = _height - 1; depth >= 0 && !(haveLow && haveHigh); depth--)
        {
            Inner node = _pathNodes![depth];
            int slot = _pathSlots![depth];
            if (!haveLow && slot > 0)
            {
                low = node.Keys[slot];
                haveLow = true;
            }
            if (!haveHigh && slot < node.Count - 1)
            {
                high = node.Keys[slot + 1] - 1;
                haveHigh = true;
            }
        }
        _finger = at;
        _fingerLow = low;
        _fingerHigh = high;
        _fingerVersion = _version;
        fresh = true;
        return at;
    }

    /// <summary><see cref="TryInsert"/> of a run that joins neither neighbour into a sparse leaf with room (the IOPTE
    /// run of a 4 KiB map between other mappings), shifted in place with nothing else to do.
    /// Anything else (an empty map, a packed or full leaf, a run that continues a neighbour) is
    /// <see cref="TryInsert"/> itself. Ends exactly as <see cref="TryInsert"/>: the same runs, leaves, packing and
    /// version.</summary>
    public bool TryInsertOne(ulong start, ulong last, T value)
    {
        if (_hole is { } hole)
        {
            if (TryFillHole(hole, start, last, value))
            {
                return true;
            }
            ShiftOutHole();
        }
        if (_root is null)
        {
            return InsertChecked(start, last, value, check: true);
        }
        Leaf at = DescendForOne(start, out _);
        int pos = Rank(at, start);
        if (at.IsDense || at.Count >= _capacity)
        {
            return InsertChecked(start, last, value, check: true);
        }
        switch (Between(at, pos, pos, start, last, value))
        {
            case Neighbours.Overlap:
                return false;
            case Neighbours.Join:
                // It continues a neighbour (they merge): the general insert does that.
                return InsertChecked(start, last, value, check: true);
        }
        _version++;
        at.EnsureCapacity(at.Count + 1, _capacity);
        at.ShiftRight(pos, at.Count - pos);
        at.Set(pos, start, last, value);
        at.Count++;
        return OneRunPlaced(at, pos);
    }

    // The end of a one-run insert whose run is now in slot `pos` of `at` (TryInsertOne's shift or TryFillHole's hole):
    // the map's count, the full leaf packed where the values pack, the finger kept valid, and the slot remembered for
    // TryRemoveExactOne. True, the insert's answer.
    private bool OneRunPlaced(Leaf at, int pos)
    {
        Count++;
        if (PackedForm && at.Count == _capacity)
        {
            TryPack(at);
        }
        _fingerVersion = _version;
        _onePosLeaf = at;
        _onePos = pos;
        _onePosVersion = _version;
        return true;
    }

    // Where a one-run insert of [start, last] stands against its neighbours: the run before slot `pos` of `at` and the
    // run at or after slot `nextPos` (the slot itself for an insert that shifts, the one after it for the hole the run
    // would overwrite).
    private enum Neighbours
    {
        Apart,
        Overlap,
        Join,
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private Neighbours Between(Leaf at, int pos, int nextPos, ulong start, ulong last, T value)
    {
        bool hasPrev = FindPrevious(at, pos, out Leaf? prevLeaf, out int prev);
        bool hasNext = Successor(at, nextPos, out Leaf? nextLeaf, out int next);
        if ((hasPrev && prevLeaf!.LastAt(prev) >= start) || (hasNext && nextLeaf!.StartAt(next) <= last))
        {
            return Neighbours.Overlap;
        }
        bool joinPrev = hasPrev && start != 0 && prevLeaf!.LastAt(prev) == start - 1 &&
            prevLeaf!.ValueAt(prev).Advance(start - prevLeaf!.StartAt(prev)).Equals(value);
        bool joinNext = hasNext && last != ulong.MaxValue && nextLeaf!.StartAt(next) == last + 1 &&
            value.Advance(last - start + 1).Equals(nextLeaf!.ValueAt(next));
        return joinPrev || joinNext ? Neighbours.Join : Neighbours.Apart;
    }

    /// <summary><see cref="TryRemoveExact"/> with the leaf's entries shifted down in place when the leaf stays sparse
    /// and at least half full (no merge follows): the IOPTE run of a 4 KiB unmap. That shift waits in the hole until
    /// the next call (see <c>_hole</c>). Otherwise the removal is <see cref="TryRemoveExact"/>'s own. Ends, as every
    /// other call sees the map, exactly as <see cref="TryRemoveExact"/>.</summary>
    public bool TryRemoveExactOne(ulong start, ulong last, out T value)
    {
        value = default;
        CloseHole();
        if (_root is null)
        {
            return false;
        }
        Leaf at = DescendForOne(start, out bool fresh);
        int pos = ReferenceEquals(at, _onePosLeaf) && _onePosVersion == _version && at.StartAt(_onePos) == start
            ? _onePos
            : Rank(at, start) - 1;
        System.Diagnostics.Debug.Assert(pos == Rank(at, start) - 1, "the last one-run insert's slot is where a search finds its run");
        // A run starting at start lies in the leaf start descends to (separators are run starts).
        if (pos < 0 || at.StartAt(pos) != start || at.LastAt(pos) != last)
        {
            return false;
        }
        value = at.ValueAt(pos);
        int left = at.Count - 1;
        if (at.IsDense || left == 0 || (_height > 0 && left < _capacity / 2))
        {
            if (!fresh)
            {
                // The removal may merge or drop the leaf, which takes the path to it.
                Descend(start, record: true);
            }
            DeleteRange(at, pos, 1);
            return true;
        }
        // The shift of the entries after pos waits in the hole (ShiftOutHole): the next one-run insert may go right
        // there.
        _hole = at;
        _holePos = pos;
        Count--;
        _version++;
        _fingerVersion = _version;
        return true;
    }
}
