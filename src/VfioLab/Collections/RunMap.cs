namespace VfioLab.Collections;

/// <summary>
/// An interval map from <c>ulong</c> keys (pages, frames or bytes, as the owner decides) to values,
/// stored as disjoint runs <c>[Start, Last]</c> (inclusive, so a run may end at 2^64-1) and merged
/// when neighbours agree. Lookups and updates cost O(log n) in the number of runs, never in keys:
/// this is how the model keeps cost proportional to extents rather than pages (DESIGN.md).
/// </summary>
/// <remarks>
/// A treap ordered by run start. Priorities come from a fixed hash of the start key, so the shape is
/// a function of the contents: deterministic across runs and machines. Not thread-safe; the owning
/// aggregate's lock protects it.
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
        // Split once at start; the neighbours are the rightmost run of the left part and the leftmost of
        // the right part, so merging with them needs no further searches (the hot path of every pin,
        // IOMMU map and DMA-tree insert).
        (Node? left, Node? right) = Split(_root, start);
        Node? prev = Rightmost(left);
        Node node;
        if (prev is not null && start != 0 && prev.Last == start - 1 && prev.Value.Advance(prev.Last - prev.Start + 1).Equals(value))
        {
            prev.Last = last;
            node = prev;
        }
        else
        {
            node = new Node(start, last, value);
            left = Merge(left, node);
            Count++;
        }
        Node? next = Leftmost(right);
        if (next is not null && node.Last != ulong.MaxValue && next.Start == node.Last + 1 &&
            node.Value.Advance(node.Last - node.Start + 1).Equals(next.Value))
        {
            node.Last = next.Last;
            right = RemoveLeftmost(right!);
            Count--;
        }
        _root = Merge(left, right);
    }

    private static Node? Rightmost(Node? n)
    {
        while (n?.Right is not null)
        {
            n = n.Right;
        }
        return n;
    }

    private static Node? Leftmost(Node? n)
    {
        while (n?.Left is not null)
        {
            n = n.Left;
        }
        return n;
    }

    // Removes the leftmost node of a subtree (it has no left child: its right subtree takes its place).
    private static Node? RemoveLeftmost(Node n)
    {
        if (n.Left is null)
        {
            Node? r = n.Right;
            n.Right = null;
            return r;
        }
        Node parent = n;
        while (parent.Left!.Left is not null)
        {
            parent = parent.Left;
        }
        Node leftmost = parent.Left;
        parent.Left = leftmost.Right;
        leftmost.Right = null;
        return n;
    }

    /// <summary>Unmaps every key in <c>[start, last]</c>, cutting runs that straddle the ends.</summary>
    public void Remove(ulong start, ulong last)
    {
        System.Diagnostics.Debug.Assert(start <= last);
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
        (Node? left, Node? right) = Split(_root, key);
        _root = Merge(Merge(left, tail), right);
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
        public readonly ulong Start = start;
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
