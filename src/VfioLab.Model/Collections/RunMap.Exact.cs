namespace VfioLab.Collections;

// Removal of one run known by its exact bounds, in one descent.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Removes the run that is exactly <c>[start, last]</c> (a run starting at <paramref name="start"/> and
    /// ending at <paramref name="last"/>) and returns its value, in one descent: what an IOMMU table's unmap of one whole
    /// IOPTE run, a 4 KiB unmap, does (issue 16). False, with nothing changed, when no run has exactly these bounds (a
    /// run that starts or ends elsewhere, or a hole): the caller then takes the general path
    /// (<see cref="Overlapping"/> and <see cref="Remove"/>), which ends the same for this case.</summary>
    public bool TryRemoveExact(ulong start, ulong last, out T value)
    {
        if (!TryFindExact(start, last, out Leaf? at, out int pos, out value))
        {
            return false;
        }
        DeleteRange(at, pos, 1);
        return true;
    }

    // The leaf and position of the run that is exactly [start, last], in one descent that records its path (for the
    // removal that follows), and its value; false when no run has these bounds.
    private bool TryFindExact(ulong start, ulong last, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Leaf? at, out int pos, out T value)
    {
        value = default;
        at = null;
        pos = -1;
        CloseHole();
        if (_root is null)
        {
            return false;
        }
        at = Descend(start, record: true);
        pos = Rank(at, start) - 1;
        // A run starting at start lies in the leaf start descends to (separators are run starts).
        if (pos < 0 || at.StartAt(pos) != start || at.LastAt(pos) != last)
        {
            return false;
        }
        value = at.ValueAt(pos);
        return true;
    }
}
