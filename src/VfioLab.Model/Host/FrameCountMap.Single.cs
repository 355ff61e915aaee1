namespace VfioLab.Host;

// One frame's only count dropped in a sparse window: the pin of a 4 KiB unmap's one frame (issue 16's pair).
internal sealed partial class FrameCountMap
{
    /// <summary>
    /// <see cref="Adjust"/> by -1 of one frame holding exactly one count in a sparse window, in two descents of the run
    /// map (the lookup and the removal) instead of <see cref="Adjust"/>'s three: the frame is appended to
    /// <paramref name="released"/> (if given) and counts toward its window's densify check exactly as <see cref="Adjust"/> would.
    /// False, with nothing changed, when the frame has no count, more than one, or lies in a dense window: the caller
    /// then takes the general path, which ends the same for those.
    /// </summary>
    public bool TryDropOnlyCount(ulong frame, List<PfnRun>? released)
    {
        if (_windows.DenseCount != 0 && DenseAt(frame >> WindowShift) is not null)
        {
            return false;
        }
        if (!_runs.TryGetValue(frame, out FrameCount count) || count.Count != 1)
        {
            return false;
        }
        _runs.Remove(frame, frame);
        if (released is not null)
        {
            AppendReleased(released, frame, 1);
        }
        NoteSparseEdit(frame >> WindowShift);
        return true;
    }
}
