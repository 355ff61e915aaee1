namespace VfioLab.Host;

/// <summary>How the simulated allocator hands out frames for faults (scenario <c>host.frames</c>); stands in
/// for the buddy allocator's order of free pages.</summary>
/// <param name="Scattered">False: the lowest free frame first, so consecutive faults get contiguous
/// frames. True: runs of <paramref name="RunPages"/> frames, slot by slot in a seeded permutation.</param>
/// <param name="RunPages">Frames per slot in the scattered layout (at least 1).</param>
/// <param name="Seed">Seed of the slot permutation.</param>
internal readonly record struct FrameLayout(bool Scattered, ulong RunPages, ulong Seed)
{
    /// <summary>The contiguous layout.</summary>
    public static FrameLayout Contiguous => new(false, 1, 0);

    /// <summary>The scattered layout with the given run length and seed.</summary>
    public static FrameLayout ScatteredRuns(ulong runPages, ulong seed) => new(true, Math.Max(runPages, 1), seed);
}
