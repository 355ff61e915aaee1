namespace VfioLab.Collections;

// Descent, lookup and the structural updates of the B+tree: insertion with splits, deletion with merges.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // The last run starting at or before key (in the leaf routed to, or the last run of the leaf before).
    private bool FindAtOrBefore(ulong key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? leaf, out int index)
    {
        CloseHole();
        if (_root is null)
        {
            leaf = null;
            index = -1;
            return false;
        }
        Leaf l = Descend(key, record: false);
        int r = Rank(l, key);
        if (r > 0)
        {
            leaf = l;
            index = r - 1;
            return true;
        }
        leaf = l.Prev;
        index = leaf is null ? -1 : leaf.Count - 1;
        return leaf is not null;
    }

    // The first run that contains key or starts after it.
    private bool FindAtOrAfter(ulong key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? leaf, out int index)
    {
        CloseHole();
        if (_root is null)
        {
            leaf = null;
            index = -1;
            return false;
        }
        Leaf l = Descend(key, record: false);
        int r = Rank(l, key);
        if (r > 0 && l.LastAt(r - 1) >= key)
        {
            leaf = l;
            index = r - 1;
            return true;
        }
        if (r == 0 && l.Prev is { } p && p.FinalLast >= key)
        {
            leaf = p;
            index = p.Count - 1;
            return true;
        }
        return Successor(l, r, out leaf, out index);
    }

    // The entry at position i of leaf, or the first of the following leaf when i is past the end.
    private static bool Successor(Leaf l, int i, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? leaf, out int index)
    {
        if (i < l.Count)
        {
            leaf = l;
            index = i;
            return true;
        }
        leaf = l.Next;
        index = 0;
        return leaf is not null;
    }

    // Number of runs in the leaf starting at or before key.
    private static int Rank(Leaf leaf, ulong key)
    {
        if (!PackedForm || leaf.Packed is not { } packed)
        {
            return UpperBound(leaf.Keys, 0, leaf.Count, key);
        }
        // Back-to-back runs of Unit keys: the run holding key is found by division, not by search.
        ulong first = packed[0];
        ulong unit = packed[1];
        if (key < first)
        {
            return 0;
        }
        // Units are powers of two in every owner (1 for page and frame maps, 4096 for an IOMMU table keyed by IOVA
        // byte): a shift, not a 64-bit division per lookup; other units divide.
        ulong slot = (unit & (unit - 1)) == 0 ? (key - first) >> System.Numerics.BitOperations.TrailingZeroCount(unit) : (key - first) / unit;
        return slot >= (ulong)leaf.Count ? leaf.Count : (int)slot + 1;
    }

    // The first index in [lo, hi) whose key exceeds key (hi if none).
    private static int UpperBound(ulong[] keys, int lo, int hi, ulong key)
    {
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] <= key)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    // Number of runs in the leaf starting strictly before key.
    private static int RankBelow(Leaf leaf, ulong key) => key == 0 ? 0 : Rank(leaf, key - 1);

    // Walks from the root to the leaf whose separators bracket key; with record, remembers each inner
    // node and the child taken, for an update that follows.
    private Leaf Descend(ulong key, bool record)
    {
        Node n = _root!;
        if (record && _height > 0 && (_pathNodes is null || _pathNodes.Length < _height))
        {
            _pathNodes = new Inner[MaxDepth];
            _pathSlots = new int[MaxDepth];
        }
        for (int depth = 0; depth < _height; depth++)
        {
            // Every node above the leaf level is inner: skip the cast's type check on this hot walk.
            Inner inner = System.Runtime.CompilerServices.Unsafe.As<Inner>(n);
            int slot = UpperBound(inner.Keys, 1, inner.Count, key) - 1;
            if (record)
            {
                _pathNodes![depth] = inner;
                _pathSlots![depth] = slot;
            }
            n = inner.Children[slot];
        }
        return System.Runtime.CompilerServices.Unsafe.As<Leaf>(n);
    }

    private bool InsertChecked(ulong start, ulong last, T value, bool check)
    {
        CloseHole();
        if (_root is null)
        {
            // A map that keeps emptying and refilling (one dirty run, one pending range) reuses its leaf.
            Leaf leaf = _spare ?? new Leaf(InitialLeafCapacity);
            _spare = null;
            leaf.Set(0, start, last, value);
            leaf.Count = 1;
            _root = leaf;
            _height = 0;
            Count = 1;
            _version++;
            return true;
        }
        Leaf at = Descend(start, record: true);
        int pos = Rank(at, start);
        bool hasPrev = FindPrevious(at, pos, out Leaf? prevLeaf, out int prev);
        bool hasNext = Successor(at, pos, out Leaf? nextLeaf, out int next);
        if (check && ((hasPrev && prevLeaf!.LastAt(prev) >= start) || (hasNext && nextLeaf!.StartAt(next) <= last)))
        {
            return false;
        }
        bool joinPrev = hasPrev && start != 0 && prevLeaf!.LastAt(prev) == start - 1 &&
            prevLeaf.ValueAt(prev).Advance(start - prevLeaf.StartAt(prev)).Equals(value);
        bool joinNext = hasNext && last != ulong.MaxValue && nextLeaf!.StartAt(next) == last + 1 &&
            value.Advance(last - start + 1).Equals(nextLeaf.ValueAt(next));
        _version++;
        if (joinPrev && joinNext)
        {
            Open(prevLeaf!);
            prevLeaf!.Lasts[prev] = nextLeaf!.LastAt(next);
            if (nextLeaf != at)
            {
                at = Descend(nextLeaf.FirstStart, record: true);
            }
            DeleteRange(at, next, 1);
        }
        else if (joinPrev)
        {
            Open(prevLeaf!);
            prevLeaf!.Lasts[prev] = last;
        }
        else if (joinNext)
        {
            // The successor grows down to start; no run lies between, so the order holds. When it
            // opens the next leaf, that leaf's separator must come down with it.
            if (nextLeaf != at)
            {
                Descend(nextLeaf!.FirstStart, record: true);
                LowerSeparator(start);
            }
            Open(nextLeaf!);
            nextLeaf!.Keys[next] = start;
            nextLeaf.Values[next] = value;
        }
        else
        {
            InsertAt(at, pos, start, last, value);
            Count++;
        }
        return true;
    }

    // The entry before position pos of leaf: in the leaf, or the last of the leaf before.
    private static bool FindPrevious(Leaf at, int pos, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? leaf, out int index)
    {
        if (pos > 0)
        {
            leaf = at;
            index = pos - 1;
            return true;
        }
        leaf = at.Prev;
        index = leaf is null ? -1 : leaf.Count - 1;
        return leaf is not null;
    }

    // The recorded path ends at a leaf whose first start drops to key: the separator that bounds the
    // leaf from below (at the lowest level where the path does not take a first child) follows it.
    private void LowerSeparator(ulong key)
    {
        for (int depth = _height - 1; depth >= 0; depth--)
        {
            int slot = _pathSlots![depth];
            if (slot > 0)
            {
                _pathNodes![depth].Keys[slot] = key;
                return;
            }
        }
    }

    // Makes key the start of a run if a run straddles it.
    private void Cut(ulong key)
    {
        Leaf at = Descend(key, record: true);
        int pos = Rank(at, key);
        if (!FindPrevious(at, pos, out Leaf? leaf, out int i) || leaf.StartAt(i) == key || leaf.LastAt(i) < key)
        {
            return;
        }
        ulong oldLast = leaf.LastAt(i);
        T tail = leaf.ValueAt(i).Advance(key - leaf.StartAt(i));
        Open(leaf);
        leaf.Lasts[i] = key - 1;
        InsertAt(at, pos, key, oldLast, tail);
        Count++;
        _version++;
    }

    // Inserts an entry at position pos of the leaf the recorded path ends at, splitting full nodes.
    private void InsertAt(Leaf leaf, int pos, ulong start, ulong last, T value)
    {
        if (leaf.Count < _capacity)
        {
            if (leaf.IsDense && TryInsertDense(leaf, pos, start, last, value))
            {
                return;
            }
            Open(leaf);
            leaf.EnsureCapacity(leaf.Count + 1, _capacity);
            leaf.ShiftRight(pos, leaf.Count - pos);
            leaf.Set(pos, start, last, value);
            leaf.Count++;
            if (PackedForm && leaf.Count == _capacity)
            {
                // A leaf is packed when it fills: a sequential fill packs each leaf once, as it is left
                // behind, and a leaf filled in random order is tried once per fill, not per insert.
                TryPack(leaf);
            }
            return;
        }
        if (!(pos == leaf.Count && leaf.Next is null) && TryLendRight(leaf, pos, start, last, value))
        {
            return;
        }
        Leaf right = NewLeaf();
        // Appending at the end of the map (a DMA tree, an IOMMU table filled in IOVA order) leaves the
        // full leaf full and starts a new one, so sequential fills pack leaves instead of halving them.
        int move = pos == leaf.Count && leaf.Next is null ? 0 : leaf.Count / 2;
        int keep = leaf.Count - move;
        if (move != 0)
        {
            // A packed full leaf split in the middle opens; one left behind by an append stays packed.
            Open(leaf);
            leaf.CopyTo(keep, right, 0, move);
        }
        right.Count = move;
        leaf.Count = keep;
        right.Next = leaf.Next;
        right.Prev = leaf;
        if (leaf.Next is not null)
        {
            leaf.Next.Prev = right;
        }
        leaf.Next = right;
        Leaf target = pos <= keep && move != 0 ? leaf : right;
        int at = target == leaf ? pos : pos - keep;
        target.ShiftRight(at, target.Count - at);
        target.Set(at, start, last, value);
        target.Count++;
        InsertChild(_height - 1, right.FirstStart, right);
    }

    // A full leaf hands its last runs to the next leaf under the same parent when that one has room, instead of
    // splitting (as a B*-tree does): maps filled in random order (the reference and pin counts of frames
    // allocated in scattered order) then average about 80 % full leaves instead of about 70 %, measured as
    // fewer bytes per run with `--shattered-memory`. Packed neighbours are left alone.
    private bool TryLendRight(Leaf leaf, int pos, ulong start, ulong last, T value)
    {
        if (_height == 0)
        {
            return false;
        }
        Inner parent = _pathNodes![_height - 1];
        int slot = _pathSlots![_height - 1];
        if (slot + 1 >= parent.Count)
        {
            return false;
        }
        Leaf right = System.Runtime.CompilerServices.Unsafe.As<Leaf>(parent.Children[slot + 1]);
        int room = _capacity - right.Count;
        if (room < 4 || right.IsDense)
        {
            return false;
        }
        int move = room / 2;
        Open(leaf);
        right.EnsureCapacity(right.Count + move + 1, _capacity);
        right.ShiftRightBy(0, right.Count, move);
        leaf.CopyTo(leaf.Count - move, right, 0, move);
        leaf.Count -= move;
        leaf.ClearTail(move);
        right.Count += move;
        if (pos <= leaf.Count)
        {
            leaf.ShiftRight(pos, leaf.Count - pos);
            leaf.Set(pos, start, last, value);
            leaf.Count++;
        }
        else
        {
            int at = pos - leaf.Count;
            right.ShiftRight(at, right.Count - at);
            right.Set(at, start, last, value);
            right.Count++;
        }
        // The right leaf's smallest start fell: its separator (explicit in this parent, as it is not a first child) follows.
        parent.Keys[slot + 1] = right.Keys[0];
        return true;
    }

    // Inserts child (whose smallest start is key) right after the path's node at depth, splitting upwards.
    private void InsertChild(int depth, ulong key, Node child)
    {
        if (depth < 0)
        {
            var root = new Inner(_capacity);
            root.Children[0] = _root!;
            root.Keys[1] = key;
            root.Children[1] = child;
            root.Count = 2;
            _root = root;
            _height++;
            return;
        }
        Inner inner = _pathNodes![depth];
        int pos = _pathSlots![depth] + 1;
        if (inner.Count < _capacity)
        {
            inner.Insert(pos, key, child);
            return;
        }
        bool rightmost = true;
        for (int d = 0; d <= depth && rightmost; d++)
        {
            rightmost = _pathSlots[d] == _pathNodes[d].Count - 1;
        }
        var right = new Inner(_capacity);
        int move = pos == inner.Count && rightmost ? 0 : inner.Count / 2;
        int keep = inner.Count - move;
        Array.Copy(inner.Keys, keep, right.Keys, 0, move);
        Array.Copy(inner.Children, keep, right.Children, 0, move);
        Array.Clear(inner.Children, keep, move);
        right.Count = move;
        inner.Count = keep;
        if (pos <= keep && move != 0)
        {
            inner.Insert(pos, key, child);
        }
        else
        {
            right.Insert(pos - keep, key, child);
        }
        InsertChild(depth - 1, right.Keys[0], right);
    }

    // Deletes count entries from position from of the leaf the recorded path ends at, then repairs fill.
    private void DeleteRange(Leaf leaf, int from, int count)
    {
        if (leaf.IsDense && from != 0 && from + count != leaf.Count)
        {
            // A hole inside a packed leaf: its runs are no longer back to back.
            Open(leaf);
        }
        if (PackedForm && leaf.Packed is { } packed)
        {
            // Whole runs off either end keep the rest back to back (UNMAP in IOVA order, a range cut at a leaf).
            if (from == 0 && count < leaf.Count)
            {
                packed.AsSpan(Leaf.Header + count, leaf.Count - count).CopyTo(packed.AsSpan(Leaf.Header));
                leaf.Base += (ulong)count * leaf.Unit;
            }
            leaf.Count -= count;
        }
        else
        {
            leaf.ShiftLeft(from + count, leaf.Count - from - count, count);
            leaf.Count -= count;
            leaf.ClearTail(count);
        }
        Count -= count;
        _version++;
        if (leaf.Count == 0)
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
            if (PackedForm)
            {
                KeepFreedLeaf(leaf);
            }
        }
        else if (leaf.Count < _capacity / 2 && _height > 0)
        {
            MergeLeaf();
        }
    }

    // Merges the under-filled leaf the path ends at with a sibling under the same parent when both fit in one.
    private void MergeLeaf()
    {
        // A leaf under half full merges into a sibling when the two fill at most three quarters of one: maps
        // whose runs first multiply and then merge back (frames allocated in scattered order, whose gaps fill
        // in) no longer keep leaves a quarter full (measured: the refcount and pin maps of 64 GiB on 1-page
        // runs, 67 bytes per run before). The quarter left free keeps an insert next to a merge from
        // splitting again at once.
        if (!TryPairForMerge(_height - 1, _capacity * 3 / 4, out Leaf left, out Leaf right))
        {
            return;
        }
        Open(left);
        Open(right);
        left.EnsureCapacity(left.Count + right.Count, _capacity);
        right.CopyTo(0, left, left.Count, right.Count);
        left.Count += right.Count;
        left.Next = right.Next;
        if (right.Next is not null)
        {
            right.Next.Prev = left;
        }
        RemoveChild(_height - 1);
    }

    // The node the path takes below parentDepth and a sibling under the same parent (the right one if there
    // is one), as a left/right pair that fits in one node; the path then points at the right one, which
    // the caller merges into the left and removes with RemoveChild.
    private bool TryPairForMerge<TNode>(int parentDepth, int fit, out TNode left, out TNode right)
        where TNode : Node
    {
        Inner parent = _pathNodes![parentDepth];
        int slot = _pathSlots![parentDepth];
        int leftSlot = slot + 1 < parent.Count ? slot : slot - 1;
        left = null!;
        right = null!;
        if (leftSlot < 0)
        {
            return false;
        }
        left = (TNode)parent.Children[leftSlot];
        right = (TNode)parent.Children[leftSlot + 1];
        if (left.Count + right.Count > fit)
        {
            return false;
        }
        _pathSlots[parentDepth] = leftSlot + 1;
        return true;
    }

    // Removes the child the path takes at depth (it is empty or was merged into its left sibling).
    private void RemoveChild(int depth)
    {
        if (depth < 0)
        {
            // A packed leaf is not kept: the spare is written in its sparse form.
            _spare = _root is Leaf { IsDense: false } empty ? empty : null;
            _spare?.Reset();
            _root = null;
            _height = 0;
            return;
        }
        Inner inner = _pathNodes![depth];
        int slot = _pathSlots![depth];
        inner.RemoveAt(slot);
        if (inner.Count == 0)
        {
            RemoveChild(depth - 1);
            return;
        }
        if (depth == 0)
        {
            if (inner.Count == 1)
            {
                _root = inner.Children[0];
                _height--;
            }
            return;
        }
        if (inner.Count >= _minFill)
        {
            return;
        }
        if (!TryPairForMerge(depth - 1, _capacity, out Inner left, out Inner right))
        {
            return;
        }
        // The right node's first separator is implicit; the parent's separator for it takes its place.
        right.Keys[0] = _pathNodes[depth - 1].Keys[_pathSlots[depth - 1]];
        Array.Copy(right.Keys, 0, left.Keys, left.Count, right.Count);
        Array.Copy(right.Children, 0, left.Children, left.Count, right.Count);
        left.Count += right.Count;
        RemoveChild(depth - 1);
    }
}
