namespace VfioLab.Host;

// One frame's count added or its only count dropped in a sparse window: the pin and unpin of a 4 KiB map's and unmap's
// one frame (issue 16's pair).
internal sealed partial class FrameCountMap
{
    /// <summary>
    /// <see cref="Adjust"/> by -1 of one frame holding exactly one count in a sparse window, in one descent of the run
    /// map where the frame ends its run (<c>RunMap.TryRemoveLastKey</c>: the frame alone, or the end of a run
    /// a pin extended by it) and two otherwise (the lookup and the removal) instead of <see cref="Adjust"/>'s three: the
    /// frame is appended to <paramref name="released"/> (if given) and counts toward its window's densify check exactly as
    /// <see cref="Adjust"/> would. False, with nothing changed, when the frame has no count, more than one, or lies in a
    /// dense window: the caller then takes the general path, which ends the same for those.
    /// </summary>
    public bool TryDropOnlyCount(ulong frame, List<PfnRun>? released)
    {
        if (_windows.DenseCount != 0 && DenseAt(frame >> WindowShift) is not null)
        {
            return false;
        }
        if (!_runs.TryRemoveLastKey(frame, new FrameCount(1)))
        {
            if (!_runs.TryGetValue(frame, out FrameCount count) || count.Count != 1)
            {
                return false;
            }
            _runs.Remove(frame, frame);
        }
        if (released is not null)
        {
            AppendReleased(released, frame, 1);
        }
        NoteSparseEdit(frame >> WindowShift);
        return true;
    }

    /// <summary>
    /// <see cref="Adjust"/> by +1 of one frame: where its window is sparse and the frame has no count, one insert of the
    /// run map (which joins it to a count-1 neighbour) and the window's densify count, without <see cref="Adjust"/>'s
    /// segment walk; anything else is <see cref="Adjust"/> itself. Ends exactly as <see cref="Adjust"/>; returns whether
    /// the frame went 0 → 1.
    /// </summary>
    public bool AddOne(ulong frame)
    {
        // A frame right after a count-1 run extends it (RunMap.TryExtendLastKey: where the last unpin shrank that run,
        // no descent); any other fresh frame is TryInsert's.
        if ((_windows.DenseCount == 0 || DenseAt(frame >> WindowShift) is null) &&
            (_runs.TryExtendLastKey(frame, new FrameCount(1)) || _runs.TryInsert(frame, frame, new FrameCount(1))))
        {
            NoteSparseEdit(frame >> WindowShift);
            return true;
        }
        Adjust(frame, frame, +1, null, out ulong risen, out _);
        return risen != 0;
    }
}
