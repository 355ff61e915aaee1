namespace VfioLab.Collections;

/// <summary>
/// An interval map from <c>ulong</c> keys (pages, frames or bytes, as the owner decides) to values,
/// stored as disjoint runs <c>[Start, Last]</c> (inclusive, so a run may end at 2^64-1) and merged
/// when neighbours agree. Lookups and updates cost O(log n) in the number of runs, never in keys:
/// this is how the model keeps cost proportional to extents rather than pages (DESIGN.md).
/// </summary>
/// <remarks>
/// A B+tree ordered by run start. Leaves hold up to <see cref="NodeCapacity"/> runs in parallel
/// arrays (starts, lasts, values) and are chained in key order; inner nodes hold separator keys.
/// A lookup in a map of a million runs touches four or five nodes, each a few cache lines, where a
/// binary tree would chase some thirty scattered nodes. Invariants: every run start in child
/// <c>i</c> of an inner node is at least <c>Keys[i]</c> (for <c>i &gt; 0</c>) and every start in
/// child <c>i - 1</c> is below it (<c>Keys[0]</c> is never read); no leaf is empty; all leaves are
/// at the same depth. Deletions merge a node that fell below a quarter full into a sibling when
/// both fit in one. The shape depends only on the sequence of operations: deterministic across runs
/// and machines. Not thread-safe; the owning aggregate's lock protects it.
/// </remarks>
internal sealed class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Runs per leaf and children per inner node in a map built with the default constructor.</summary>
    public const int DefaultNodeCapacity = 64;

    private const int MaxDepth = 32;
    private const int InitialLeafCapacity = 4;

    private readonly int _capacity;
    private readonly int _minFill;
    private Node? _root;
    private Leaf? _spare;
    private int _height;
    private int _version;
    private Inner[]? _pathNodes;
    private int[]? _pathSlots;

    /// <summary>An empty map with nodes of <see cref="DefaultNodeCapacity"/> entries.</summary>
    public RunMap()
        : this(DefaultNodeCapacity)
    {
    }

    /// <summary>An empty map with nodes of <paramref name="nodeCapacity"/> entries (at least 4; tests use
    /// small nodes to exercise splits and merges).</summary>
    public RunMap(int nodeCapacity)
    {
        if (nodeCapacity < 4)
        {
            throw new ArgumentOutOfRangeException(nameof(nodeCapacity), "a node holds at least 4 entries");
        }
        _capacity = nodeCapacity;
        _minFill = nodeCapacity / 4;
    }

    /// <summary>Runs per leaf and children per inner node.</summary>
    public int NodeCapacity => _capacity;

    /// <summary>Number of runs.</summary>
    public int Count { get; private set; }

    /// <summary>Whether the map holds no run.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>Finds the run containing <paramref name="key"/>.</summary>
    public bool TryGet(ulong key, out Run<T> run)
    {
        if (FindAtOrBefore(key, out Leaf? leaf, out int i) && leaf.Lasts[i] >= key)
        {
            run = leaf.RunAt(i);
            return true;
        }
        run = default;
        return false;
    }

    /// <summary>The value at <paramref name="key"/>, if some run contains it.</summary>
    public bool TryGetValue(ulong key, out T value)
    {
        if (FindAtOrBefore(key, out Leaf? leaf, out int i) && leaf.Lasts[i] >= key)
        {
            value = leaf.Values[i].Advance(key - leaf.Keys[i]);
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>The first run that contains <paramref name="key"/> or starts after it.</summary>
    public bool TryGetAtOrAfter(ulong key, out Run<T> run)
    {
        if (FindAtOrAfter(key, out Leaf? leaf, out int i))
        {
            run = leaf.RunAt(i);
            return true;
        }
        run = default;
        return false;
    }

    /// <summary>The last run that contains <paramref name="key"/> or ends before it.</summary>
    public bool TryGetAtOrBefore(ulong key, out Run<T> run)
    {
        if (FindAtOrBefore(key, out Leaf? leaf, out int i))
        {
            run = leaf.RunAt(i);
            return true;
        }
        run = default;
        return false;
    }

    /// <summary>Whether any key in <c>[start, last]</c> is mapped.</summary>
    public bool Overlaps(ulong start, ulong last) => FindAtOrAfter(start, out Leaf? leaf, out int i) && leaf.Keys[i] <= last;

    /// <summary>Whether every key in <c>[start, last]</c> is mapped.</summary>
    public bool Covers(ulong start, ulong last)
    {
        ulong key = start;
        while (true)
        {
            if (!TryGet(key, out Run<T> r))
            {
                return false;
            }
            if (r.Last >= last)
            {
                return true;
            }
            key = r.Last + 1;
        }
    }

    /// <summary>Maps every key in <c>[start, last]</c>: key <c>start + i</c> gets <c>value.Advance(i)</c>.</summary>
    public void Set(ulong start, ulong last, T value)
    {
        System.Diagnostics.Debug.Assert(start <= last);
        if (InsertChecked(start, last, value, check: true))
        {
            // A free range (the common case) took one descent.
            return;
        }
        if (FindAtOrBefore(start, out Leaf? leaf, out int i) && leaf.Lasts[i] >= last &&
            leaf.Values[i].Advance(start - leaf.Keys[i]).Equals(value))
        {
            // Already so (a frame dirtied again, a count set to what it is): nothing changes.
            return;
        }
        Remove(start, last);
        InsertChecked(start, last, value, check: false);
    }

    /// <summary><see cref="Set"/> for a range the caller has just found free (no key of it is mapped):
    /// skips the removal pass.</summary>
    public void Insert(ulong start, ulong last, T value)
    {
        System.Diagnostics.Debug.Assert(start <= last && !Overlaps(start, last), "Insert over mapped keys");
        InsertChecked(start, last, value, check: false);
    }

    /// <summary>Maps <c>[start, last]</c> to <paramref name="value"/> if no key of it is mapped, in one
    /// descent; returns false and changes nothing otherwise.</summary>
    public bool TryInsert(ulong start, ulong last, T value)
    {
        System.Diagnostics.Debug.Assert(start <= last);
        return InsertChecked(start, last, value, check: true);
    }

    /// <summary>Unmaps every key in <c>[start, last]</c>, cutting runs that straddle the ends.</summary>
    public void Remove(ulong start, ulong last)
    {
        System.Diagnostics.Debug.Assert(start <= last);
        if (_root is null)
        {
            return;
        }
        Leaf at = Descend(start, record: true);
        int pos = Rank(at, start);
        Leaf? first;
        int fi;
        if (pos > 0 && at.Lasts[pos - 1] >= start)
        {
            first = at;
            fi = pos - 1;
        }
        else if (pos == 0 && at.Prev is { } p && p.Lasts[p.Count - 1] >= start)
        {
            first = p;
            fi = p.Count - 1;
        }
        else if (!Successor(at, pos, out first, out fi))
        {
            return;
        }
        if (first.Keys[fi] > last)
        {
            return;
        }
        ulong runStart = first.Keys[fi];
        ulong runLast = first.Lasts[fi];
        if (runStart <= start && runLast >= last)
        {
            // The range lies inside one run (a mapping, an IOMMU run, part of a pin run): delete, trim
            // or split it where it lies instead of cutting and sweeping.
            if (runStart == start && runLast == last)
            {
                // A run starting at start lies in the leaf start descends to: the path is the right one.
                DeleteRange(at, fi, 1);
                return;
            }
            bool boundedInLeaf = fi < first.Count - 1 || first.Next is null;
            if (runStart == start && !boundedInLeaf)
            {
                // Raising the last start of a leaf could pass the next leaf's separator: cut instead.
                Cut(last + 1);
                Leaf again = Descend(start, record: true);
                DeleteRange(again, Rank(again, start) - 1, 1);
                return;
            }
            _version++;
            if (runStart == start)
            {
                // A run's start may rise in place while a later start of the same leaf (or none) bounds it.
                first.Values[fi] = first.Values[fi].Advance(last + 1 - runStart);
                first.Keys[fi] = last + 1;
            }
            else if (runLast == last)
            {
                first.Lasts[fi] = start - 1;
            }
            else
            {
                T tail = first.Values[fi].Advance(last + 1 - runStart);
                first.Lasts[fi] = start - 1;
                Leaf tailLeaf = Descend(last + 1, record: true);
                InsertAt(tailLeaf, Rank(tailLeaf, last + 1), last + 1, runLast, tail);
                Count++;
            }
            return;
        }
        Cut(start);
        if (last != ulong.MaxValue)
        {
            Cut(last + 1);
        }
        while (_root is not null)
        {
            Leaf leaf = Descend(start, record: true);
            int from = RankBelow(leaf, start);
            if (from == leaf.Count)
            {
                // Every start here is below the range; the next one, if any, begins the next leaf.
                if (leaf.Next is null || leaf.Next.Keys[0] > last)
                {
                    return;
                }
                leaf = Descend(leaf.Next.Keys[0], record: true);
                from = 0;
            }
            int to = Rank(leaf, last);
            if (to <= from)
            {
                return;
            }
            DeleteRange(leaf, from, to - from);
        }
    }

    /// <summary>Removes every run.</summary>
    public void Clear()
    {
        _root = null;
        _height = 0;
        Count = 0;
        _version++;
    }

    /// <summary>The runs overlapping <c>[start, last]</c>, clipped to it, in key order. Changing the map
    /// during the enumeration is allowed: the walk then resumes at the first key it has not yet passed.</summary>
    public RangeEnumerable Overlapping(ulong start, ulong last) => new(this, start, last);

    /// <summary>Every run, in key order.</summary>
    public RangeEnumerable All() => new(this, 0, ulong.MaxValue);

    /// <summary>Checks the B+tree invariants (ordering, separators, fill, leaf chain, count); throws
    /// <see cref="InvalidOperationException"/> naming the first one broken. For tests.</summary>
    internal void AssertValid()
    {
        if (_root is null)
        {
            Require(Count == 0 && _height == 0, "an empty tree holds runs");
            return;
        }
        Leaf? previous = null;
        int runs = 0;
        ValidateNode(_root, 0, 0, ulong.MaxValue, lowerBounded: false, ref previous, ref runs);
        Require(previous!.Next is null, "the last leaf has a successor");
        Require(runs == Count, $"Count {Count} but {runs} runs");
    }

    private void ValidateNode(Node node, int depth, ulong low, ulong high, bool lowerBounded, ref Leaf? previous, ref int runs)
    {
        Require(node.Count > 0, "an empty node");
        if (node is Leaf leaf)
        {
            Require(depth == _height, "leaves at different depths");
            Require(leaf.Prev == previous && (previous is null || previous.Next == leaf), "broken leaf chain");
            for (int i = 0; i < leaf.Count; i++)
            {
                Require(leaf.Keys[i] <= leaf.Lasts[i], "a run ends before it starts");
                Require((!lowerBounded || leaf.Keys[i] >= low) && leaf.Keys[i] < high, "a run start outside its separators");
                Require(i == 0 || leaf.Keys[i] > leaf.Lasts[i - 1], "runs overlap or are out of order");
            }
            Require(previous is null || leaf.Keys[0] > previous.Lasts[previous.Count - 1], "runs overlap across leaves");
            previous = leaf;
            runs += leaf.Count;
            return;
        }
        var inner = (Inner)node;
        Require(depth < _height, "an inner node at leaf depth");
        for (int i = 0; i < inner.Count; i++)
        {
            ulong childLow = i == 0 ? low : inner.Keys[i];
            bool childBounded = i != 0 || lowerBounded;
            ulong childHigh = i + 1 < inner.Count ? inner.Keys[i + 1] : high;
            Require(i == 0 || inner.Keys[i] > inner.Keys[i - 1] || i == 1, "separators out of order");
            Require(i == 0 || !lowerBounded || inner.Keys[i] >= low, "a separator below its parent's");
            ValidateNode(inner.Children[i], depth + 1, childLow, childHigh, childBounded, ref previous, ref runs);
        }
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"RunMap invariant broken: {what}");
        }
    }

    // The last run starting at or before key (in the leaf routed to, or the last run of the leaf before).
    private bool FindAtOrBefore(ulong key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? leaf, out int index)
    {
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
        if (_root is null)
        {
            leaf = null;
            index = -1;
            return false;
        }
        Leaf l = Descend(key, record: false);
        int r = Rank(l, key);
        if (r > 0 && l.Lasts[r - 1] >= key)
        {
            leaf = l;
            index = r - 1;
            return true;
        }
        if (r == 0 && l.Prev is { } p && p.Lasts[p.Count - 1] >= key)
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
    private static int Rank(Leaf leaf, ulong key) => UpperBound(leaf.Keys, 0, leaf.Count, key);

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
        if (check && ((hasPrev && prevLeaf!.Lasts[prev] >= start) || (hasNext && nextLeaf!.Keys[next] <= last)))
        {
            return false;
        }
        bool joinPrev = hasPrev && start != 0 && prevLeaf!.Lasts[prev] == start - 1 &&
            prevLeaf.Values[prev].Advance(prevLeaf.Lasts[prev] - prevLeaf.Keys[prev] + 1).Equals(value);
        bool joinNext = hasNext && last != ulong.MaxValue && nextLeaf!.Keys[next] == last + 1 &&
            value.Advance(last - start + 1).Equals(nextLeaf.Values[next]);
        _version++;
        if (joinPrev && joinNext)
        {
            prevLeaf!.Lasts[prev] = nextLeaf!.Lasts[next];
            if (nextLeaf != at)
            {
                at = Descend(nextLeaf.Keys[0], record: true);
            }
            DeleteRange(at, next, 1);
        }
        else if (joinPrev)
        {
            prevLeaf!.Lasts[prev] = last;
        }
        else if (joinNext)
        {
            // The successor grows down to start; no run lies between, so the order holds. When it
            // opens the next leaf, that leaf's separator must come down with it.
            if (nextLeaf != at)
            {
                Descend(nextLeaf!.Keys[0], record: true);
                LowerSeparator(start);
            }
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
        if (!FindPrevious(at, pos, out Leaf? leaf, out int i) || leaf.Keys[i] == key || leaf.Lasts[i] < key)
        {
            return;
        }
        ulong oldLast = leaf.Lasts[i];
        T tail = leaf.Values[i].Advance(key - leaf.Keys[i]);
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
            leaf.EnsureCapacity(leaf.Count + 1, _capacity);
            leaf.ShiftRight(pos, leaf.Count - pos);
            leaf.Set(pos, start, last, value);
            leaf.Count++;
            return;
        }
        var right = new Leaf(_capacity);
        // Appending at the end of the map (a DMA tree, an IOMMU table filled in IOVA order) leaves the
        // full leaf full and starts a new one, so sequential fills pack leaves instead of halving them.
        int move = pos == leaf.Count && leaf.Next is null ? 0 : leaf.Count / 2;
        int keep = leaf.Count - move;
        leaf.CopyTo(keep, right, 0, move);
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
        InsertChild(_height - 1, right.Keys[0], right);
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
        leaf.ShiftLeft(from + count, leaf.Count - from - count, count);
        leaf.Count -= count;
        leaf.ClearTail(count);
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
        }
        else if (leaf.Count < _minFill && _height > 0)
        {
            MergeLeaf(leaf);
        }
    }

    // Merges an under-filled leaf with a sibling under the same parent when both fit in one.
    private void MergeLeaf(Leaf leaf)
    {
        Inner parent = _pathNodes![_height - 1];
        int slot = _pathSlots![_height - 1];
        Leaf left;
        Leaf right;
        if (slot + 1 < parent.Count)
        {
            left = leaf;
            right = (Leaf)parent.Children[slot + 1];
            _pathSlots[_height - 1] = slot + 1;
        }
        else if (slot > 0)
        {
            left = (Leaf)parent.Children[slot - 1];
            right = leaf;
        }
        else
        {
            return;
        }
        if (left.Count + right.Count > _capacity)
        {
            return;
        }
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

    // Removes the child the path takes at depth (it is empty or was merged into its left sibling).
    private void RemoveChild(int depth)
    {
        if (depth < 0)
        {
            _spare = _root as Leaf;
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
        Inner parent = _pathNodes[depth - 1];
        int pslot = _pathSlots[depth - 1];
        Inner left;
        Inner right;
        if (pslot + 1 < parent.Count)
        {
            left = inner;
            right = (Inner)parent.Children[pslot + 1];
            _pathSlots[depth - 1] = pslot + 1;
        }
        else if (pslot > 0)
        {
            left = (Inner)parent.Children[pslot - 1];
            right = inner;
        }
        else
        {
            return;
        }
        if (left.Count + right.Count > _capacity)
        {
            return;
        }
        // The right node's first separator is implicit; the parent's separator for it takes its place.
        right.Keys[0] = parent.Keys[_pathSlots[depth - 1]];
        Array.Copy(right.Keys, 0, left.Keys, left.Count, right.Count);
        Array.Copy(right.Children, 0, left.Children, left.Count, right.Count);
        left.Count += right.Count;
        RemoveChild(depth - 1);
    }

    private abstract class Node
    {
        public ulong[] Keys = [];
        public int Count;
    }

    /// <summary>Up to a node's capacity of runs, by start; the arrays grow to that capacity as needed.</summary>
    private sealed class Leaf : Node
    {
        public ulong[] Lasts;
        public T[] Values;
        public Leaf? Prev;
        public Leaf? Next;

        public Leaf(int capacity)
        {
            Keys = new ulong[capacity];
            Lasts = new ulong[capacity];
            Values = new T[capacity];
        }

        public Run<T> RunAt(int i) => new(Keys[i], Lasts[i], Values[i]);

        public void Reset()
        {
            Count = 0;
            Prev = null;
            Next = null;
        }

        public void Set(int i, ulong start, ulong last, T value)
        {
            Keys[i] = start;
            Lasts[i] = last;
            Values[i] = value;
        }

        public void EnsureCapacity(int needed, int max)
        {
            if (needed <= Keys.Length)
            {
                return;
            }
            int size = Math.Min(max, Math.Max(needed, Keys.Length * 2));
            Array.Resize(ref Keys, size);
            Array.Resize(ref Lasts, size);
            Array.Resize(ref Values, size);
        }

        // Span copies (memmove semantics, overlap-safe) skip Array.Copy's per-call type checks, which
        // cost more than the few hundred bytes a leaf shift moves.
        public void ShiftRight(int from, int count)
        {
            if (count == 0)
            {
                return;
            }
            Keys.AsSpan(from, count).CopyTo(Keys.AsSpan(from + 1));
            Lasts.AsSpan(from, count).CopyTo(Lasts.AsSpan(from + 1));
            Values.AsSpan(from, count).CopyTo(Values.AsSpan(from + 1));
        }

        public void ShiftLeft(int from, int count, int by)
        {
            if (count == 0)
            {
                return;
            }
            Keys.AsSpan(from, count).CopyTo(Keys.AsSpan(from - by));
            Lasts.AsSpan(from, count).CopyTo(Lasts.AsSpan(from - by));
            Values.AsSpan(from, count).CopyTo(Values.AsSpan(from - by));
        }

        public void CopyTo(int from, Leaf target, int at, int count)
        {
            Keys.AsSpan(from, count).CopyTo(target.Keys.AsSpan(at));
            Lasts.AsSpan(from, count).CopyTo(target.Lasts.AsSpan(at));
            Values.AsSpan(from, count).CopyTo(target.Values.AsSpan(at));
        }

        // Values may hold references (a mapping): clear the vacated slots so they can be collected.
        public void ClearTail(int count)
        {
            if (System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                Array.Clear(Values, Count, count);
            }
        }
    }

    /// <summary>Children with the smallest start below each (the first is implicit).</summary>
    private sealed class Inner : Node
    {
        public readonly Node[] Children;

        public Inner(int capacity)
        {
            Keys = new ulong[capacity];
            Children = new Node[capacity];
        }

        public void Insert(int pos, ulong key, Node child)
        {
            Keys.AsSpan(pos, Count - pos).CopyTo(Keys.AsSpan(pos + 1));
            Children.AsSpan(pos, Count - pos).CopyTo(Children.AsSpan(pos + 1));
            Keys[pos] = key;
            Children[pos] = child;
            Count++;
        }

        public void RemoveAt(int pos)
        {
            Keys.AsSpan(pos + 1, Count - pos - 1).CopyTo(Keys.AsSpan(pos));
            Children.AsSpan(pos + 1, Count - pos - 1).CopyTo(Children.AsSpan(pos));
            Count--;
            Children[Count] = null!;
        }
    }

    /// <summary>Allocation-free enumeration of the runs overlapping a range, clipped to it.</summary>
    internal readonly struct RangeEnumerable(RunMap<T> map, ulong start, ulong last)
    {
        public Enumerator GetEnumerator() => new(map, start, last);
    }

    /// <summary>In-order walk along the leaf chain from the first run ending at or after the range
    /// start; if the map changes under it, it finds its place again by key.</summary>
    internal struct Enumerator
    {
        private readonly RunMap<T> _map;
        private readonly ulong _last;
        private ulong _next;
        private bool _done;
        private Leaf? _leaf;
        private int _index;
        private int _version;

        public Enumerator(RunMap<T> map, ulong start, ulong last)
        {
            _map = map;
            _last = last;
            _next = start;
            _done = start > last;
            _leaf = null;
            _index = 0;
            _version = map._version;
            Current = default;
        }

        public Run<T> Current { get; private set; }

        public bool MoveNext()
        {
            if (_done)
            {
                return false;
            }
            if (_leaf is null || _version != _map._version)
            {
                _version = _map._version;
                if (!_map.FindAtOrAfter(_next, out _leaf, out _index))
                {
                    _done = true;
                    return false;
                }
            }
            else if (!Successor(_leaf, _index, out _leaf, out _index))
            {
                _done = true;
                return false;
            }
            Leaf leaf = _leaf!;
            ulong runStart = leaf.Keys[_index];
            if (runStart > _last)
            {
                _done = true;
                return false;
            }
            ulong s = Math.Max(runStart, _next);
            ulong l = Math.Min(leaf.Lasts[_index], _last);
            Current = new Run<T>(s, l, leaf.Values[_index].Advance(s - runStart));
            if (l >= _last)
            {
                _done = true;
            }
            else
            {
                _next = l + 1;
                _index++;
            }
            return true;
        }
    }
}
