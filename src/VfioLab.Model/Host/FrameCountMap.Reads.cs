using VfioLab.Collections;

namespace VfioLab.Host;

// Reads: the maximal runs of equal non-zero counts, across sparse runs and dense windows, exactly as one RunMap of the
// same counts would hold them. Only runs that touch a window edge can continue into a neighbour (inside a sparse window
// the run map has merged them already; inside a dense window a segment ends where the count changes), so joining looks
// across window edges only.
internal sealed partial class FrameCountMap
{
    private const ulong LastWindow = ulong.MaxValue >> WindowShift;

    /// <summary>Whether any frame of <c>[start, last]</c> has a count.</summary>
    public bool Overlaps(ulong start, ulong last) => RawAtOrAfter(start, out ulong s, out _, out _) && s <= last;

    /// <summary>Whether every frame of <c>[start, last]</c> has a count.</summary>
    public bool Covers(ulong start, ulong last) => FirstZero(start, last) is null;

    /// <summary>The first frame of <c>[start, last]</c> with no count, if any.</summary>
    public ulong? FirstZero(ulong start, ulong last)
    {
        ulong cursor = start;
        while (true)
        {
            if (!RawAtOrAfter(cursor, out ulong s, out ulong l, out _) || s > cursor)
            {
                return cursor;
            }
            if (l >= last)
            {
                return null;
            }
            cursor = l + 1;
        }
    }

    /// <summary>Whether no frame of <c>[start, last]</c> has a count of 0 (one window or none dense: no walk).</summary>
    public bool NoneZero(ulong start, ulong last)
    {
        ulong window = start >> WindowShift;
        if ((last >> WindowShift) == window && DenseAt(window) is { } counts)
        {
            int a = (int)(start & WindowMask);
            return start == last ? counts[a] != 0 : counts.AsSpan(a, (int)(last - start) + 1).IndexOf((ushort)0) < 0;
        }
        return Covers(start, last);
    }

    /// <summary>The maximal run containing <paramref name="frame"/>.</summary>
    public bool TryGet(ulong frame, out Run<FrameCount> run) =>
        Maximal(RawContaining(frame, out ulong s, out ulong l, out ulong c), s, l, c, out run);

    /// <summary>The count at <paramref name="frame"/>, if it has one.</summary>
    public bool TryGetValue(ulong frame, out FrameCount value)
    {
        ulong c = CountAt(frame);
        value = new FrameCount(c);
        return c != 0;
    }

    /// <summary>The first maximal run that contains <paramref name="frame"/> or starts after it.</summary>
    public bool TryGetAtOrAfter(ulong frame, out Run<FrameCount> run) =>
        Maximal(RawAtOrAfter(frame, out ulong s, out ulong l, out ulong c), s, l, c, out run);

    // A stretch found, [s, l] holding count c, extended to the maximal run a single RunMap would hold.
    private bool Maximal(bool found, ulong s, ulong l, ulong c, out Run<FrameCount> run)
    {
        if (!found)
        {
            run = default;
            return false;
        }
        Extend(ref s, ref l, c);
        run = new Run<FrameCount>(s, l, new FrameCount(c));
        return true;
    }

    /// <summary>The first frame of <c>[start, last]</c> holding a count, and the stretch from it holding that one
    /// count, clipped to the range (not always the longest: where a dense window meets runs it may stop at the
    /// window's edge; the next call goes on from there): a search bounded by the range. The scattered allocator asks this once per slot of a few frames, where
    /// <see cref="TryGetAtOrAfter"/> would scan a dense window both ways for the whole maximal run (a third of the
    /// time of populating 64 GiB on 1-page runs, issue 16).</summary>
    public bool TryGetFirstWithin(ulong start, ulong last, out ulong first, out ulong end)
    {
        if ((start >> WindowShift) == (last >> WindowShift) && _windows.DenseCount != 0 && DenseAt(start >> WindowShift) is { } counts)
        {
            int i = (int)(start & WindowMask);
            int j = (int)(last & WindowMask);
            int nz = counts.AsSpan(i, j - i + 1).IndexOfAnyExcept((ushort)0);
            if (nz < 0)
            {
                first = end = 0;
                return false;
            }
            int at = i + nz;
            int other = counts.AsSpan(at + 1, j - at).IndexOfAnyExcept(counts[at]);
            ulong ws = start & ~WindowMask;
            first = ws + (ulong)at;
            end = ws + (ulong)(other < 0 ? j : at + other);
            return true;
        }
        if (RawAtOrAfter(start, out ulong s, out ulong l, out _) && s <= last)
        {
            first = Math.Max(s, start);
            end = Math.Min(l, last);
            return true;
        }
        first = end = 0;
        return false;
    }

    /// <summary>The maximal runs overlapping <c>[start, last]</c>, in frame order, clipped to it (as
    /// <see cref="RunMap{T}.Overlapping"/>).</summary>
    public RangeEnumerable Overlapping(ulong start, ulong last) => new(this, start, last);

    /// <summary>All maximal runs in frame order.</summary>
    public RangeEnumerable All() => new(this, 0, ulong.MaxValue);

    // The first piece (a run of the run map, or a segment of equal counts of a dense window) that ends at or after key.
    private bool RawAtOrAfter(ulong key, out ulong start, out ulong last, out ulong count)
    {
        while (true)
        {
            ulong window = key >> WindowShift;
            if (_windows.DenseCount != 0 && DenseAt(window) is { } counts)
            {
                int i = (int)(key & WindowMask);
                int nz = counts.AsSpan(i).IndexOfAnyExcept((ushort)0);
                if (nz >= 0)
                {
                    int at = i + nz;
                    ulong ws = window << WindowShift;
                    start = ws + (ulong)(nz == 0 ? SegmentStart(counts, at) : at);
                    last = ws + (ulong)SegmentEnd(counts, at);
                    count = counts[at];
                    return true;
                }
                if (window == LastWindow)
                {
                    break;
                }
                key = (window + 1) << WindowShift;
                continue;
            }
            bool hasRun = _runs.TryGetAtOrAfter(key, out Run<FrameCount> r);
            if (!_windows.TryNextDense(window, out ulong nextDense))
            {
                if (hasRun)
                {
                    start = r.Start;
                    last = r.Last;
                    count = r.Value.Count;
                    return true;
                }
                break;
            }
            ulong denseStart = nextDense << WindowShift;
            if (hasRun && r.Start < denseStart)
            {
                start = r.Start;
                last = r.Last;
                count = r.Value.Count;
                return true;
            }
            key = denseStart;
        }
        start = last = count = 0;
        return false;
    }

    // The piece containing key.
    private bool RawContaining(ulong key, out ulong start, out ulong last, out ulong count)
    {
        if (DenseAt(key >> WindowShift) is { } counts)
        {
            int i = (int)(key & WindowMask);
            count = counts[i];
            ulong ws = key & ~WindowMask;
            start = ws + (ulong)SegmentStart(counts, i);
            last = ws + (ulong)SegmentEnd(counts, i);
            return count != 0;
        }
        if (_runs.TryGet(key, out Run<FrameCount> r))
        {
            start = r.Start;
            last = r.Last;
            count = r.Value.Count;
            return true;
        }
        start = last = count = 0;
        return false;
    }

    // Widens a piece of count `count` to the maximal run, across window edges.
    private void Extend(ref ulong start, ref ulong last, ulong count)
    {
        if (_windows.DenseCount == 0)
        {
            return;
        }
        while ((start & WindowMask) == 0 && start != 0 && RawContaining(start - 1, out ulong s, out _, out ulong c) && c == count)
        {
            start = s;
        }
        ExtendRight(ref last, count);
    }

    private void ExtendRight(ref ulong last, ulong count)
    {
        if (_windows.DenseCount == 0)
        {
            return;
        }
        while (last != ulong.MaxValue && ((last + 1) & WindowMask) == 0 && RawContaining(last + 1, out _, out ulong l, out ulong c) &&
            c == count)
        {
            last = l;
        }
    }

    /// <summary>Enumerates maximal runs by key: finds its place again after each run, so it stays valid if the map
    /// changes between steps.</summary>
    internal readonly struct RangeEnumerable(FrameCountMap map, ulong start, ulong last)
    {
        public Enumerator GetEnumerator() => new(map, start, last);
    }

    internal struct Enumerator(FrameCountMap map, ulong start, ulong last)
    {
        private ulong _next = start;
        private bool _done = start > last;

        public Run<FrameCount> Current { get; private set; }

        public bool MoveNext()
        {
            if (_done || !map.RawAtOrAfter(_next, out ulong s, out ulong l, out ulong c) || s > last)
            {
                _done = true;
                return false;
            }
            // Clipped to the range, as RunMap's enumeration is: only the right end can reach into a neighbour (frames
            // between _next and the piece's start have no count).
            s = Math.Max(s, _next);
            if (l < last)
            {
                map.ExtendRight(ref l, c);
            }
            l = Math.Min(l, last);
            Current = new Run<FrameCount>(s, l, new FrameCount(c));
            if (l >= last)
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
