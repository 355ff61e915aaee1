namespace VfioLab.Collections;

/// <summary>
/// A batch of disjoint key ranges in ascending order and the update it makes to a <see cref="RunMap{T}"/>'s keys
/// (<see cref="RunMap{T}.UpdateSorted"/>): a pin or an unpin of each frame of a GUP refill or of an unmap, sorted by
/// frame. A struct, so the map's merge loop calls it without an indirection.
/// </summary>
internal interface IRunBatch<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Number of ranges.</summary>
    int Count { get; }

    /// <summary>First key of range <paramref name="i"/>; above the last key of range <c>i - 1</c>.</summary>
    ulong StartOf(int i);

    /// <summary>Last key of range <paramref name="i"/> (inclusive).</summary>
    ulong LastOf(int i);

    /// <summary>The new value of keys <c>[start, last]</c>, a piece of one range over which the map holds one run
    /// (<paramref name="mapped"/>, whose value at <paramref name="start"/> is <paramref name="value"/>) or nothing;
    /// false to leave the keys unmapped. Called once per piece, in key order.</summary>
    bool Apply(ulong start, ulong last, bool mapped, T value, out T result);
}
