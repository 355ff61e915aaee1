namespace VfioLab.Collections;

// A sorted batch of updates applied leaf by leaf (UpdateSorted): the pins of a GUP refill or the unpins of an unmap,
// sorted by frame (issue 16).
//
// Why: on memory shattered into 1-page runs a 4 GiB MAP+UNMAP pins and unpins a million scattered frames, and one
// Set or Remove per frame run was a descent from the root plus a shift of the leaf's arrays each, about 300 ns of a
// page's ~670 (measured with `--shattered-memory`, docs/benchmarks.md, 2026-12-07). A sorted batch lands many runs in
// each leaf (a refill of 64 Ki runs, an unmap's million), so this descends once per leaf it touches, merges the leaf's
// runs with the batch's ranges into a scratch array in one pass (splitting runs the ranges cut, inserting in gaps,
// dropping what the batch unmaps, merging neighbours that continue each other), and copies the result back, splitting
// it over new leaves when it outgrew one or merging the leaf into a sibling when it fell below half full, as the
// one-run updates do.
//
// Rules that keep the tree's invariants without special cases in the merge:
// - A leaf takes the batch's ranges that start before its successor's first run (a range reaching into that run is
//   cut there and the rest goes to the next step), and the separator above it is raised past its last start if a
//   range landed in the gap between that separator and the successor's first run.
// - A run of the previous leaf may reach past the separator (runs extend across separators; only starts route): a
//   range that starts inside it is merged into that leaf instead.
// - Neighbours across leaves: an output that continues the previous leaf's last run extends that run; one that
//   continues the next leaf's first run is inserted afterwards by the ordinary Insert (one descent), which lowers the
//   next leaf's start and separator as it always does.
// - At most 2·capacity ranges per step, so the scratch stays a few leaves long, however large the batch.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    private ulong[] _bulkKeys = [];
    private ulong[] _bulkLasts = [];
    private T[] _bulkValues = [];
    private int _bulkCount;

    /// <summary>Applies <paramref name="batch"/> (disjoint ranges in ascending key order): each key of each range gets
    /// the value <see cref="IRunBatch{T}.Apply"/> gives for it, or is unmapped, and neighbours merge as after
    /// <see cref="Set"/>. Ends exactly as one <see cref="Set"/> or <see cref="Remove"/> per piece would, in one pass
    /// over the leaves the batch touches.</summary>
    public void UpdateSorted<TBatch>(ref TBatch batch)
        where TBatch : struct, IRunBatch<T>
    {
        CloseHole();
        int n = batch.Count;
        int i = 0;
        ulong cur = n > 0 ? batch.StartOf(0) : 0;
        while (i < n)
        {
            if (_root is null)
            {
                ulong last = batch.LastOf(i);
                if (batch.Apply(cur, last, mapped: false, default, out T v))
                {
                    InsertChecked(cur, last, v, check: false);
                }
                if (++i < n)
                {
                    cur = batch.StartOf(i);
                }
                continue;
            }
            UpdateLeaf(ref batch, ref i, ref cur);
        }
        if (_bulkKeys.Length > 8 * _capacity)
        {
            // Keep no more than a few leaves' worth of scratch alive between batches.
            _bulkKeys = [];
            _bulkLasts = [];
            _bulkValues = [];
        }
    }

    // One step: the leaf cur routes to (or the previous one, if its last run covers cur) merged with the batch's
    // ranges from range i (of which keys below cur are done) that start before the next leaf's first run.
    private void UpdateLeaf<TBatch>(ref TBatch batch, ref int i, ref ulong cur)
        where TBatch : struct, IRunBatch<T>
    {
        Leaf leaf = Descend(cur, record: true);
        if (Rank(leaf, cur) == 0 && leaf.Prev is { } covering && covering.FinalLast >= cur)
        {
            leaf = Descend(covering.FirstStart, record: true);
        }
        Leaf? next = leaf.Next;
        ulong bound = next is null ? 0 : next.FirstStart;
        int n = batch.Count;
        int budget = 2 * _capacity;
        _bulkCount = 0;

        int k = 0;
        int old = leaf.Count;
        ulong rs = 0;
        ulong rl = 0;
        T rv = default;
        bool have = old > 0;
        if (have)
        {
            rs = leaf.StartAt(0);
            rl = leaf.LastAt(0);
            rv = leaf.ValueAt(0);
        }
        for (int taken = 0; i < n && taken < budget && (next is null || cur < bound); taken++)
        {
            ulong a = cur;
            ulong b = batch.LastOf(i);
            bool whole = next is null || b < bound;
            if (!whole)
            {
                b = bound - 1;
            }
            while (have && rl < a)
            {
                Emit(rs, rl, rv);
                if (have = ++k < old)
                {
                    rs = leaf.StartAt(k);
                    rl = leaf.LastAt(k);
                    rv = leaf.ValueAt(k);
                }
            }
            if (have && rs < a)
            {
                Emit(rs, a - 1, rv);
                rv = rv.Advance(a - rs);
                rs = a;
            }
            ulong pos = a;
            while (true)
            {
                if (have && rs <= b)
                {
                    if (rs > pos)
                    {
                        EmitApply(ref batch, pos, rs - 1, mapped: false, default);
                    }
                    ulong end = Math.Min(rl, b);
                    EmitApply(ref batch, rs, end, mapped: true, rv);
                    if (rl > b)
                    {
                        rv = rv.Advance(b + 1 - rs);
                        rs = b + 1;
                        break;
                    }
                    if (have = ++k < old)
                    {
                        rs = leaf.StartAt(k);
                        rl = leaf.LastAt(k);
                        rv = leaf.ValueAt(k);
                    }
                    if (end == b)
                    {
                        break;
                    }
                    pos = end + 1;
                }
                else
                {
                    EmitApply(ref batch, pos, b, mapped: false, default);
                    break;
                }
            }
            if (whole)
            {
                if (++i < n)
                {
                    cur = batch.StartOf(i);
                }
            }
            else
            {
                cur = bound;
            }
        }
        while (have)
        {
            Emit(rs, rl, rv);
            if (have = ++k < old)
            {
                rs = leaf.StartAt(k);
                rl = leaf.LastAt(k);
                rv = leaf.ValueAt(k);
            }
        }
        WriteBack(leaf, next, old);
    }

    private void EmitApply<TBatch>(ref TBatch batch, ulong start, ulong last, bool mapped, T value)
        where TBatch : struct, IRunBatch<T>
    {
        if (batch.Apply(start, last, mapped, value, out T result))
        {
            Emit(start, last, result);
        }
    }

    // Appends a run to the scratch, extending the one before when the value continues it.
    private void Emit(ulong start, ulong last, T value)
    {
        int o = _bulkCount;
        if (o > 0)
        {
            ulong prevLast = _bulkLasts[o - 1];
            if (prevLast != ulong.MaxValue && prevLast + 1 == start &&
                _bulkValues[o - 1].Advance(prevLast - _bulkKeys[o - 1] + 1).Equals(value))
            {
                _bulkLasts[o - 1] = last;
                return;
            }
        }
        if (o == _bulkKeys.Length)
        {
            int size = Math.Max(4 * _capacity, 2 * o);
            Array.Resize(ref _bulkKeys, size);
            Array.Resize(ref _bulkLasts, size);
            Array.Resize(ref _bulkValues, size);
        }
        _bulkKeys[o] = start;
        _bulkLasts[o] = last;
        _bulkValues[o] = value;
        _bulkCount = o + 1;
    }

    // Replaces the runs of the leaf the recorded path ends at (old of them) by the scratch, then restores fill.
    private void WriteBack(Leaf leaf, Leaf? next, int old)
    {
        int from = 0;
        int m = _bulkCount;
        bool defer = false;
        ulong ds = 0;
        ulong dl = 0;
        T dv = default;
        if (m > 0 && next is not null && _bulkLasts[m - 1] != ulong.MaxValue && _bulkLasts[m - 1] + 1 == next.FirstStart &&
            _bulkValues[m - 1].Advance(_bulkLasts[m - 1] - _bulkKeys[m - 1] + 1).Equals(next.ValueAt(0)))
        {
            // Continues the next leaf's first run: inserted at the end, by the path that moves that leaf's start.
            defer = true;
            m--;
            ds = _bulkKeys[m];
            dl = _bulkLasts[m];
            dv = _bulkValues[m];
        }
        if (m > 0 && leaf.Prev is { } p && _bulkKeys[0] != 0 && p.FinalLast == _bulkKeys[0] - 1 &&
            p.ValueAt(p.Count - 1).Advance(_bulkKeys[0] - p.StartAt(p.Count - 1)).Equals(_bulkValues[0]))
        {
            // Continues the previous leaf's last run, which may reach past the separator: it grows.
            Open(p);
            p.Lasts[p.Count - 1] = _bulkLasts[0];
            from = 1;
            m--;
        }
        Count += m - old;
        _version++;
        if (m == 0)
        {
            if (leaf.Prev is not null)
            {
                leaf.Prev.Next = leaf.Next;
            }
            if (leaf.Next is not null)
            {
                leaf.Next.Prev = leaf.Prev;
            }
            RemoveChild(_height - 1);
        }
        else
        {
            if (next is not null)
            {
                // A range may have landed between the separator above this leaf and the next leaf's first run.
                ulong highest = _bulkKeys[from + m - 1];
                for (int depth = _height - 1; depth >= 0; depth--)
                {
                    Inner inner = _pathNodes![depth];
                    int slot = _pathSlots![depth];
                    if (slot + 1 < inner.Count)
                    {
                        if (inner.Keys[slot + 1] <= highest)
                        {
                            inner.Keys[slot + 1] = highest + 1;
                        }
                        break;
                    }
                }
            }
            int pieces = (m + _capacity - 1) / _capacity;
            int per = (m + pieces - 1) / pieces;
            int first = Math.Min(per, m);
            Open(leaf);
            leaf.EnsureCapacity(first, _capacity);
            CopyFromScratch(from, leaf, first);
            leaf.Count = first;
            if (old > first)
            {
                leaf.ClearTail(old - first);
            }
            Leaf left = leaf;
            for (int done = first; done < m; done += per)
            {
                int c = Math.Min(per, m - done);
                Leaf right = NewLeaf();
                right.EnsureCapacity(c, _capacity);
                CopyFromScratch(from + done, right, c);
                right.Count = c;
                right.Prev = left;
                right.Next = left.Next;
                if (left.Next is not null)
                {
                    left.Next.Prev = right;
                }
                left.Next = right;
                if (left != leaf)
                {
                    Descend(left.FirstStart, record: true);
                }
                InsertChild(_height - 1, right.FirstStart, right);
                left = right;
            }
            if (pieces == 1)
            {
                if (PackedForm && first == _capacity)
                {
                    TryPack(leaf);
                }
                else if (first < _capacity / 2 && _height > 0)
                {
                    MergeLeaf();
                }
            }
        }
        if (System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            Array.Clear(_bulkValues, 0, _bulkCount);
        }
        if (defer)
        {
            InsertChecked(ds, dl, dv, check: false);
        }
    }

    private void CopyFromScratch(int from, Leaf leaf, int count)
    {
        _bulkKeys.AsSpan(from, count).CopyTo(leaf.Keys);
        _bulkLasts.AsSpan(from, count).CopyTo(leaf.Lasts);
        _bulkValues.AsSpan(from, count).CopyTo(leaf.Values);
    }
}
