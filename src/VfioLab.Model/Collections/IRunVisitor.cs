namespace VfioLab.Collections;

/// <summary>
/// What <see cref="RunMap{T}.Visit"/> calls for each run of a range, in key order: a struct, so the map's walk calls
/// it without an indirection (an IOMMU table's runs taken out by a streamed unmap, one per page on shattered memory).
/// </summary>
internal interface IRunVisitor<T>
    where T : struct, IRunValue<T>
{
    /// <summary>The run <c>[start, last]</c> (clipped to the range visited), whose value at <paramref name="start"/> is
    /// <paramref name="value"/>; false to stop the walk after it.</summary>
    bool Visit(ulong start, ulong last, T value);
}

/// <summary>
/// What <see cref="RunMap{T}.VisitPacked"/> calls: <see cref="IRunVisitor{T}.Visit"/> for single runs, and
/// <see cref="VisitPacked"/> for a packed leaf's runs that lie wholly inside the range visited.
/// </summary>
internal interface IPackedRunVisitor<T> : IRunVisitor<T>
    where T : struct, IRunValue<T>
{
    /// <summary>The runs <c>[start + k * unit, start + (k + 1) * unit - 1]</c>, back to back, whose values are
    /// <c>T.Unpack(packed[k])</c>, for each k of <paramref name="packed"/> (never empty); false to stop the walk after
    /// them.</summary>
    bool VisitPacked(ulong start, ulong unit, ReadOnlySpan<ulong> packed);
}
