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
}
