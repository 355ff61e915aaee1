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
/// at the same depth. Deletions merge a leaf that fell below half full into a sibling when both
/// fill at most three quarters of one, and an inner node below a quarter full when both fit; a full
/// leaf lends runs to its right sibling before it splits. Leaves of equal-length back-to-back runs
/// pack into one word per run (RunMap.Dense.cs). The shape depends only on the sequence of operations: deterministic across runs
/// and machines. Not thread-safe; the owning aggregate's lock protects it.
/// </remarks>
internal sealed partial class RunMap<T>
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
        if (FindAtOrBefore(key, out Leaf? leaf, out int i) && leaf.LastAt(i) >= key)
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
        if (FindAtOrBefore(key, out Leaf? leaf, out int i) && leaf.LastAt(i) >= key)
        {
            value = leaf.ValueAt(i).Advance(key - leaf.StartAt(i));
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
    public bool Overlaps(ulong start, ulong last) => FindAtOrAfter(start, out Leaf? leaf, out int i) && leaf.StartAt(i) <= last;

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
        if (FindAtOrBefore(start, out Leaf? leaf, out int i) && leaf.LastAt(i) >= last)
        {
            ulong runStart = leaf.StartAt(i);
            if (leaf.ValueAt(i).Advance(start - runStart).Equals(value))
            {
                // Already so (a frame dirtied again, a count set to what it is): nothing changes.
                return;
            }
            if (runStart == start && leaf.LastAt(i) == last && !JoinsNeighbour(leaf, i, start, last, value))
            {
                // Exactly one run gets a new value that continues neither neighbour (a reference count
                // raised over a run, a PTE replaced by COW): the run stays where it is, in either leaf form.
                ReplaceValue(leaf, i, value);
                return;
            }
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
        CloseHole();
        if (_root is null)
        {
            return;
        }
        Leaf at = Descend(start, record: true);
        int pos = Rank(at, start);
        Leaf? first;
        int fi;
        if (pos > 0 && at.LastAt(pos - 1) >= start)
        {
            first = at;
            fi = pos - 1;
        }
        else if (pos == 0 && at.Prev is { } p && p.FinalLast >= start)
        {
            first = p;
            fi = p.Count - 1;
        }
        else if (!Successor(at, pos, out first, out fi))
        {
            return;
        }
        if (first.StartAt(fi) > last)
        {
            return;
        }
        ulong runStart = first.StartAt(fi);
        ulong runLast = first.LastAt(fi);
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
                Open(first);
                first.Values[fi] = first.Values[fi].Advance(last + 1 - runStart);
                first.Keys[fi] = last + 1;
            }
            else if (runLast == last)
            {
                Open(first);
                first.Lasts[fi] = start - 1;
            }
            else
            {
                T tail = first.ValueAt(fi).Advance(last + 1 - runStart);
                Open(first);
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
                if (leaf.Next is null || leaf.Next.FirstStart > last)
                {
                    return;
                }
                leaf = Descend(leaf.Next.FirstStart, record: true);
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
        _hole = null;
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
}
