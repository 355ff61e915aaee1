namespace VfioLab.Collections;

/// <summary>
/// An interval map from <c>ulong</c> keys (pages, frames or bytes, as the owner decides) to values,
/// stored as disjoint runs <c>[Start, Last]</c> (inclusive, so a run may end at 2^64-1) and merged
/// when neighbours agree. Lookups and updates cost O(log n) in the number of runs, never in keys:
/// this is how the model keeps cost proportional to extents rather than pages (DESIGN.md).
/// </summary>
/// <remarks>
/// A treap ordered by run start. A node's priority is a fixed hash of the start it was created with
/// (a run that grows downwards keeps it), so the shape is a function of the contents and their
/// history: deterministic across runs and machines. Not thread-safe; the owning aggregate's lock
/// protects it.
/// </remarks>
internal sealed class RunMap<T>
    where T : struct, IRunValue<T>
{
    private Node? _root;

    /// <summary>Number of runs.</summary>
    public int Count { get; private set; }

    /// <summary>Whether the map holds no run.</summary>
    public bool IsEmpty => _root is null;

    /// <summary>Finds the run containing <paramref name="key"/>.</summary>
    public bool TryGet(ulong key, out Run<T> run)
    {
        Node? n = FindContaining(key);
        run = n is null ? default : n.AsRun();
        return n is not null;
    }

    /// <summary>The value at <paramref name="key"/>, if some run contains it.</summary>
    public bool TryGetValue(ulong key, out T value)
    {
        Node? n = FindContaining(key);
        value = n is null ? default : n.Value.Advance(key - n.Start);
        return n is not null;
    }

    /// <summary>The first run that contains <paramref name="key"/> or starts after it.</summary>
    public bool TryGetAtOrAfter(ulong key, out Run<T> run)
    {
        Node? best = null;
        Node? n = _root;
        while (n is not null)
        {
            if (n.Last >= key)
            {
                best = n;
                if (n.Start <= key)
                {
                    break;
                }
                n = n.Left;
            }
            else
            {
                n = n.Right;
            }
        }
        run = best is null ? default : best.AsRun();
        return best is not null;
    }

    /// <summary>The last run that contains <paramref name="key"/> or ends before it.</summary>
    public bool TryGetAtOrBefore(ulong key, out Run<T> run)
    {
        Node? best = null;
        Node? n = _root;
        while (n is not null)
        {
            if (n.Start <= key)
            {
                best = n;
                n = n.Right;
            }
            else
            {
                n = n.Left;
            }
        }
        run = best is null ? default : best.AsRun();
        return best is not null;
    }

    /// <summary>Whether any key in <c>[start, last]</c> is mapped.</summary>
    public bool Overlaps(ulong start, ulong last) => TryGetAtOrAfter(start, out Run<T> r) && r.Start <= last;

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
        Remove(start, last);
        InsertUnchecked(start, last, value);
    }

    /// <summary><see cref="Set"/> for a range the caller has just found free (no key of it is mapped):
    /// skips the removal pass.</summary>
    public void Insert(ulong start, ulong last, T value)
    {
        System.Diagnostics.Debug.Assert(start <= last && !Overlaps(start, last), "Insert over mapped keys");
        InsertUnchecked(start, last, value);
    }

    private void InsertUnchecked(ulong start, ulong last, T value)
    {
        // One descent finds the neighbours: the run starting last before start, and the first after it.
        Node? prev = null;
        Node? next = null;
        for (Node? n = _root; n is not null;)
        {
            if (start < n.Start)
            {
                next = n;
                n = n.Left;
            }
            else
            {
                prev = n;
                n = n.Right;
            }
        }
        bool joinPrev = prev is not null && start != 0 && prev.Last == start - 1 && prev.Value.Advance(prev.Last - prev.Start + 1).Equals(value);
        bool joinNext = next is not null && last != ulong.MaxValue && next.Start == last + 1 && value.Advance(last - start + 1).Equals(next.Value);
        if (joinPrev && joinNext)
        {
            prev!.Last = next!.Last;
            DeleteExact(next.Start);
            Count--;
        }
        else if (joinPrev)
        {
            prev!.Last = last;
        }
        else if (joinNext)
        {
            // The successor grows down to start: no key lies between, so the tree order holds.
            next!.Start = start;
            next.Value = value;
        }
        else
        {
            InsertNode(new Node(start, last, value));
            Count++;
        }
    }

    // Treap insertion: descend while the nodes outrank the new one, then split the subtree there.
    private void InsertNode(Node node)
    {
        ref Node? link = ref _root;
        while (link is not null && link.Priority >= node.Priority)
        {
            link = ref (node.Start < link.Start ? ref link.Left : ref link.Right);
        }
        (node.Left, node.Right) = Split(link, node.Start);
        link = node;
    }

    // Removes the node whose run starts at start (which must exist), merging its subtrees in its place.
    private void DeleteExact(ulong start)
    {
        ref Node? link = ref _root;
        while (link is not null && link.Start != start)
        {
            link = ref (start < link.Start ? ref link.Left : ref link.Right);
        }
        System.Diagnostics.Debug.Assert(link is not null, "no run starts at the key");
        link = Merge(link!.Left, link.Right);
    }

    /// <summary>Unmaps every key in <c>[start, last]</c>, cutting runs that straddle the ends.</summary>
    public void Remove(ulong start, ulong last)
    {
        System.Diagnostics.Debug.Assert(start <= last);
        Node? exact = FindContaining(start);
        if (exact is not null && exact.Start == start && exact.Last == last)
        {
            // One whole run: unlink it directly (a mapping, an IOMMU run, a pin run).
            DeleteExact(start);
            Count--;
            return;
        }
        if (!Overlaps(start, last))
        {
            return;
        }
        Cut(start);
        if (last != ulong.MaxValue)
        {
            Cut(last + 1);
        }
        (Node? left, Node? rest) = Split(_root, start);
        Node? middle;
        Node? right;
        if (last == ulong.MaxValue)
        {
            middle = rest;
            right = null;
        }
        else
        {
            (middle, right) = Split(rest, last + 1);
        }
        Count -= CountNodes(middle);
        _root = Merge(left, right);
    }

    /// <summary>Removes every run.</summary>
    public void Clear()
    {
        _root = null;
        Count = 0;
    }

    /// <summary>The runs overlapping <c>[start, last]</c>, clipped to it, in key order. The map must not
    /// change during the enumeration; collect first when changing it.</summary>
    public RangeEnumerable Overlapping(ulong start, ulong last) => new(this, start, last);

    /// <summary>Every run, in key order.</summary>
    public RangeEnumerable All() => new(this, 0, ulong.MaxValue);

    private Node? FindContaining(ulong key)
    {
        Node? n = _root;
        while (n is not null)
        {
            if (key < n.Start)
            {
                n = n.Left;
            }
            else if (key > n.Last)
            {
                n = n.Right;
            }
            else
            {
                return n;
            }
        }
        return null;
    }

    // Makes key the start of a run if a run straddles it.
    private void Cut(ulong key)
    {
        Node? n = FindContaining(key);
        if (n is null || n.Start == key)
        {
            return;
        }
        var tail = new Node(key, n.Last, n.Value.Advance(key - n.Start));
        n.Last = key - 1;
        InsertNode(tail);
        Count++;
    }

    // Splits into runs starting before key and runs starting at or after it.
    private static (Node? Less, Node? AtOrAfter) Split(Node? n, ulong key)
    {
        if (n is null)
        {
            return (null, null);
        }
        if (n.Start < key)
        {
            (Node? l, Node? r) = Split(n.Right, key);
            n.Right = l;
            return (n, r);
        }
        else
        {
            (Node? l, Node? r) = Split(n.Left, key);
            n.Left = r;
            return (l, n);
        }
    }

    private static Node? Merge(Node? a, Node? b)
    {
        if (a is null)
        {
            return b;
        }
        if (b is null)
        {
            return a;
        }
        if (a.Priority >= b.Priority)
        {
            a.Right = Merge(a.Right, b);
            return a;
        }
        b.Left = Merge(a, b.Left);
        return b;
    }

    private static int CountNodes(Node? n) => n is null ? 0 : 1 + CountNodes(n.Left) + CountNodes(n.Right);

    /// <summary>A treap node: one run. The only per-extent heap object of the map.</summary>
    private sealed class Node(ulong start, ulong last, T value)
    {
        public ulong Start = start;
        public readonly uint Priority = Mix(start);
        public ulong Last = last;
        public T Value = value;
        public Node? Left;
        public Node? Right;

        public Run<T> AsRun() => new(Start, Last, Value);

        // splitmix64 finaliser: a fixed, well-spread priority per start key.
        private static uint Mix(ulong x)
        {
            x ^= x >> 30;
            x *= 0xbf58476d1ce4e5b9UL;
            x ^= x >> 27;
            x *= 0x94d049bb133111ebUL;
            x ^= x >> 31;
            return (uint)x;
        }
    }

    /// <summary>Allocation-free enumeration of the runs overlapping a range, clipped to it.</summary>
    internal readonly struct RangeEnumerable(RunMap<T> map, ulong start, ulong last)
    {
        public Enumerator GetEnumerator() => new(map, start, last);
    }

    /// <summary>In-order walk that starts at the first run ending at or after the range start.</summary>
    internal struct Enumerator
    {
        private readonly RunMap<T> _map;
        private readonly ulong _last;
        private ulong _next;
        private bool _done;

        public Enumerator(RunMap<T> map, ulong start, ulong last)
        {
            _map = map;
            _last = last;
            _next = start;
            _done = start > last;
            Current = default;
        }

        public Run<T> Current { get; private set; }

        public bool MoveNext()
        {
            if (_done || !_map.TryGetAtOrAfter(_next, out Run<T> r) || r.Start > _last)
            {
                _done = true;
                return false;
            }
            ulong s = Math.Max(r.Start, _next);
            ulong l = Math.Min(r.Last, _last);
            Current = new Run<T>(s, l, r.Value.Advance(s - r.Start));
            if (l == ulong.MaxValue || l >= _last)
            {
                _done = true;
            }
            else
            {
                _next = l + 1;
            }
            return true;
        }
    }
}
