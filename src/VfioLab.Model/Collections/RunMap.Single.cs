namespace VfioLab.Collections;

// One run in and one run out of the middle of a sparse leaf that needs no merge, split or rebalance: the lane of a 4 KiB
// MAP_DMA and UNMAP_DMA in an IOMMU table of many runs (issue 16's pair). The leaf's shift is the general one
// (Leaf.ShiftRight/ShiftLeft, managed moves: RunMap.Moves.cs); what the lane skips is the general insert's and removal's
// handling of merges and underfull leaves, which a run between other mappings never needs: the pair was ~25 ns (3 %)
// slower through TryInsert and TryRemoveExact (--pair-loop, 2026-12-07, same sitting).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary><see cref="TryInsert"/> of a run that joins neither neighbour into a sparse leaf with room (the IOPTE
    /// run of a 4 KiB map between other mappings), shifted in place with nothing else to do.
    /// Anything else (an empty map, a packed or full leaf, a run that continues a neighbour) is
    /// <see cref="TryInsert"/> itself. Ends exactly as <see cref="TryInsert"/>: the same runs, leaves, packing and
    /// version.</summary>
    public bool TryInsertOne(ulong start, ulong last, T value)
    {
        if (_root is null)
        {
            return InsertChecked(start, last, value, check: true);
        }
        Leaf at = Descend(start, record: true);
        int pos = Rank(at, start);
        if (at.IsDense || at.Count >= _capacity)
        {
            return InsertChecked(start, last, value, check: true);
        }
        bool hasPrev = FindPrevious(at, pos, out Leaf? prevLeaf, out int prev);
        bool hasNext = Successor(at, pos, out Leaf? nextLeaf, out int next);
        if ((hasPrev && prevLeaf!.LastAt(prev) >= start) || (hasNext && nextLeaf!.StartAt(next) <= last))
        {
            return false;
        }
        bool joinPrev = hasPrev && start != 0 && prevLeaf!.LastAt(prev) == start - 1 &&
            prevLeaf.ValueAt(prev).Advance(start - prevLeaf.StartAt(prev)).Equals(value);
        bool joinNext = hasNext && last != ulong.MaxValue && nextLeaf!.StartAt(next) == last + 1 &&
            value.Advance(last - start + 1).Equals(nextLeaf.ValueAt(next));
        if (joinPrev || joinNext)
        {
            // It continues a neighbour (they merge): the general insert does that.
            return InsertChecked(start, last, value, check: true);
        }
        _version++;
        at.EnsureCapacity(at.Count + 1, _capacity);
        at.ShiftRight(pos, at.Count - pos);
        at.Set(pos, start, last, value);
        at.Count++;
        Count++;
        if (PackedForm && at.Count == _capacity)
        {
            TryPack(at);
        }
        return true;
    }

    /// <summary><see cref="TryRemoveExact"/> with the leaf's entries shifted down in place when the leaf stays sparse
    /// and at least half full (no merge follows): the IOPTE run of a 4 KiB unmap. Otherwise
    /// the removal is <see cref="TryRemoveExact"/>'s own. Ends exactly as <see cref="TryRemoveExact"/>.</summary>
    public bool TryRemoveExactOne(ulong start, ulong last, out T value)
    {
        if (!TryFindExact(start, last, out Leaf? at, out int pos, out value))
        {
            return false;
        }
        int left = at.Count - 1;
        if (at.IsDense || left == 0 || (_height > 0 && left < _capacity / 2))
        {
            DeleteRange(at, pos, 1);
            return true;
        }
        at.ShiftLeft(pos + 1, left - pos, 1);
        at.Count = left;
        at.ClearTail(1);
        Count--;
        _version++;
        return true;
    }
}
