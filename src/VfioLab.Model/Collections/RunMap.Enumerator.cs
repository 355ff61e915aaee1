namespace VfioLab.Collections;

// Range enumeration along the leaf chain.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
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
            ulong runStart = leaf.StartAt(_index);
            if (runStart > _last)
            {
                _done = true;
                return false;
            }
            ulong s = Math.Max(runStart, _next);
            ulong l = Math.Min(leaf.LastAt(_index), _last);
            Current = new Run<T>(s, l, leaf.ValueAt(_index).Advance(s - runStart));
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
