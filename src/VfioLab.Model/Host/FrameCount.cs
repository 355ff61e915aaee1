using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A constant per-frame counter stored over a run of frames (the run-length form of
/// struct page's _refcount or pincount); constant, so neighbouring runs with equal counts merge.</summary>
internal readonly record struct FrameCount(ulong Count) : IRunValue<FrameCount>
{
    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    /// <remarks>Inlined, as is <see cref="Equals(FrameCount)"/>: the pin map's one-frame pin and unpin (the join test of
    /// an insert, the value test of RunMap.TryRemoveLastKey) called both out of line in their large inlined callers
    /// (perf of the ladder's <c>memory pin+unpin 1 frame</c>, issue 16; docs/benchmarks.md, pair12).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public FrameCount Advance(ulong offset) => this;

    /// <summary>Whether both hold the same count (the record's own equality, written out so it inlines).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool Equals(FrameCount other) => Count == other.Count;

    /// <inheritdoc />
    public override int GetHashCode() => Count.GetHashCode();

    /// <inheritdoc />
    public static bool TryPack(FrameCount value, out ulong packed)
    {
        packed = value.Count;
        return true;
    }

    /// <inheritdoc />
    public static FrameCount Unpack(ulong packed) => new(packed);
}
