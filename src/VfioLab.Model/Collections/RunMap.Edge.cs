namespace VfioLab.Collections;

// One key on or off the end of the run that holds it: the pin and unpin of a 4 KiB map's and unmap's one frame in the
// pin map (FrameCountMap.AddOne and TryDropOnlyCount, issue 16's pair), where the frame's count-1 run is either the frame
// alone (a fresh pin of a frame with no pinned neighbour) or a run the pin had extended by that frame (a frame next to
// pinned ones: every pin of the pair's rig, whose 65,535 neighbour frames are one run).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // The run whose last key the last TryExtendLastKey or TryRemoveLastKey moved (slot _edgePos of _edgeLeaf), while the
    // map is unchanged since (_edgeVersion == _version: every change bumps _version). The pair's pin extends the run its
    // unpin shrank, and the unpin shrinks the run the pin extended: the slot stands in for the descent and the leaf's
    // search (an out-of-line Rank call even in a one-leaf map) on both sides. Debug builds check it against a descent.
    private Leaf? _edgeLeaf;
    private int _edgePos;
    private int _edgeVersion;

    // The remembered edge slot's leaf and position when it is valid and its run ends at `last`, else null.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private Leaf? EdgeEndingAt(ulong last, out int pos)
    {
        pos = _edgePos;
        if (_edgeLeaf is { } e && _edgeVersion == _version && pos < e.Count && e.LastAt(pos) == last)
        {
            return e;
        }
        return null;
    }

    /// <summary>
    /// Maps <paramref name="key"/> to <paramref name="value"/> by extending the run that ends at <c>key - 1</c> and
    /// continues to <paramref name="value"/> there, when the last edge move (this or <see cref="TryRemoveLastKey"/>) left
    /// that run and no run starts at or right after the key: <see cref="TryInsert"/>'s "joins the run before" case,
    /// ending exactly as it does (the same runs, leaves, packing and version), without its descent. False, with nothing
    /// changed, otherwise (no remembered run ends at <c>key - 1</c>, its value does not continue, or the next run starts
    /// at or right after the key): the caller then takes <see cref="TryInsert"/>.
    /// </summary>
    public bool TryExtendLastKey(ulong key, T value)
    {
        CloseHole();
        if (key == 0 || key == ulong.MaxValue || _root is null)
        {
            return false;
        }
        // Only where the last edge move left the run: a descent here, when the key extends nothing (a frame with no
        // pinned neighbour, the moving pair's), came on top of TryInsert's own.
        Leaf? at = EdgeEndingAt(key - 1, out int pos);
        if (at is null)
        {
            return false;
        }
        System.Diagnostics.Debug.Assert(IsRunAtOrBefore(key - 1, at, pos), "the remembered edge is the run a descent finds");
        // The next run must neither overlap the key nor join it (TryInsert would merge the two runs).
        if (pos + 1 < at.Count ? at.StartAt(pos + 1) <= key + 1 : at.Next is { } next && next.FirstStart <= key + 1)
        {
            return false;
        }
        if (!at.ValueAt(pos).Advance(key - at.StartAt(pos)).Equals(value))
        {
            return false;
        }
        _version++;
        Open(at);
        at.Lasts[pos] = key;
        _edgeLeaf = at;
        _edgePos = pos;
        _edgeVersion = _version;
        return true;
    }

    /// <summary>
    /// Unmaps <paramref name="key"/> when it is the last key of the run holding it and its value there equals
    /// <paramref name="expected"/>: the run shrinks by one key, or goes when it held that key alone. Ends exactly as
    /// <see cref="Remove"/> of <c>[key, key]</c> (the same runs, leaves, packing and version), in one descent where a
    /// <see cref="TryGetValue"/> then a <see cref="Remove"/> took two, and none where the last edge move left that run.
    /// False, with nothing changed, when no run holds the key, the key is not its run's last, the value differs, or the
    /// run lies in the leaf before the one the key routes to: the caller then takes the general calls.
    /// </summary>
    public bool TryRemoveLastKey(ulong key, T expected)
    {
        CloseHole();
        if (_root is null)
        {
            return false;
        }
        bool recorded = false;
        Leaf? at = EdgeEndingAt(key, out int pos);
        if (at is null)
        {
            at = Descend(key, record: true);
            recorded = true;
            pos = Rank(at, key) - 1;
            if (pos < 0 || at.LastAt(pos) != key)
            {
                return false;
            }
        }
        System.Diagnostics.Debug.Assert(IsRunAtOrBefore(key, at, pos), "the remembered edge is the run a descent finds");
        ulong start = at.StartAt(pos);
        if (!at.ValueAt(pos).Advance(key - start).Equals(expected))
        {
            return false;
        }
        if (start == key)
        {
            // The run is the key alone: Remove's exact case, on the path to its leaf (a remembered run in the leaf
            // before the one the key routes to, below a lowered separator, is left to the general calls).
            if (!recorded && !ReferenceEquals(Descend(key, record: true), at))
            {
                return false;
            }
            DeleteRange(at, pos, 1);
            return true;
        }
        // Remove's "the range ends the run" case: the run's last comes down in place.
        _version++;
        Open(at);
        at.Lasts[pos] = key - 1;
        _edgeLeaf = at;
        _edgePos = pos;
        _edgeVersion = _version;
        return true;
    }

    // Whether slot `pos` of `at` holds the last run starting at or before `key`, as a descent finds it (the debug check
    // of the remembered edge).
    private bool IsRunAtOrBefore(ulong key, Leaf at, int pos)
    {
        Leaf l = Descend(key, record: false);
        return FindPrevious(l, Rank(l, key), out Leaf? p, out int pi) && ReferenceEquals(p, at) && pi == pos;
    }
}
