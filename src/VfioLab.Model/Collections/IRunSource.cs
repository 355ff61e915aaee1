namespace VfioLab.Collections;

/// <summary>Runs read by index, ascending and disjoint, for <see cref="RunMap{T}.InsertSorted{TRuns}(ref TRuns)"/>: a span
/// of runs, or runs computed as they are read from their owner's own arrays.</summary>
internal interface IRunSource<T>
    where T : struct, IRunValue<T>
{
    /// <summary>How many runs there are.</summary>
    int Length { get; }

    /// <summary>Run <paramref name="i"/> (0 ≤ i &lt; <see cref="Length"/>).</summary>
    Run<T> this[int i] { get; }

    /// <summary>Where the source can tell it without building each run: whether runs <paramref name="i"/> on, one per
    /// word of <paramref name="words"/>, are each <paramref name="unit"/> keys long, back to back from
    /// <paramref name="start"/>, packable, and none continuing the one before it; if so their packed values are written
    /// to <paramref name="words"/>. False when it cannot tell or they are not (the caller then reads the runs one by one;
    /// <paramref name="words"/> may have been written).</summary>
    bool TryPackUnits(int i, ulong start, ulong unit, Span<ulong> words);
}
