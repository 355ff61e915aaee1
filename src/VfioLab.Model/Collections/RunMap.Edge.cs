namespace VfioLab.Collections;

// One key off the end of the run that holds it, in one descent: the unpin of a 4 KiB unmap's one frame in the pin map
// (FrameCountMap.TryDropOnlyCount, issue 16's pair), where the frame's count-1 run is either the frame alone (a fresh
// pin of a frame with no pinned neighbour) or a run the pin had extended by that frame (a frame next to pinned ones).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>
    /// Unmaps <paramref name="key"/> when it is the last key of the run holding it and its value there equals
    /// <paramref name="expected"/>: the run shrinks by one key, or goes when it held that key alone. Ends exactly as
    /// <see cref="Remove"/> of <c>[key, key]</c> (the same runs, leaves, packing and version), in one descent where a
    /// <see cref="TryGetValue"/> then a <see cref="Remove"/> took two. False, with nothing changed, when no run holds
    /// the key, the key is not its run's last, the value differs, or the run lies in the leaf before the one the key
    /// routes to: the caller then takes the general calls.
    /// </summary>
    public bool TryRemoveLastKey(ulong key, T expected)
    {
        CloseHole();
        if (_root is null)
        {
            return false;
        }
        Leaf at = Descend(key, record: true);
        int pos = Rank(at, key) - 1;
        if (pos < 0 || at.LastAt(pos) != key)
        {
            return false;
        }
        ulong start = at.StartAt(pos);
        if (!at.ValueAt(pos).Advance(key - start).Equals(expected))
        {
            return false;
        }
        if (start == key)
        {
            // The run is the key alone: Remove's exact case, on the path just recorded.
            DeleteRange(at, pos, 1);
            return true;
        }
        // Remove's "the range ends the run" case: the run's last comes down in place.
        _version++;
        Open(at);
        at.Lasts[pos] = key - 1;
        return true;
    }
}
