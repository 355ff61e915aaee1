namespace VfioLab.Cli;

/// <summary>The garbage collector's setting for a <c>vfiolab run</c> process: its first allocations are made without
/// any collection (a no-GC region of <see cref="AllowanceBytes"/>), after which the collector works as usual.</summary>
/// <remarks>
/// <para>A scenario run builds a model whose objects live until the process exits: the 64 GiB scenario of issue 16
/// (bench/scenarios/shattered-64g.yaml) allocates 522 MB and still holds 520 MB when it ends. The collector cannot know
/// that, so it ran six collections there (a gen0, three gen1 that copied the ~84 MB each had just promoted once more,
/// two background gen2 with their pauses), 0.3-0.5 s of pauses on the only thread that works, for nothing collected
/// (docs/benchmarks.md, 2026-12-07 "scenario2"). With the allowance the run makes one collection (the region's start,
/// on an empty heap: 2 ms) and its peak RSS is unchanged (565 MB): the allowance is address space the collector
/// reserves, touched only as objects fill it.</para>
/// <para>Settings measured first and left out: a larger gen0 budget (<c>GCgen0size</c> 1 GiB: still three collections,
/// the same pauses, since the large-object budget and the background gen2 collections are apart from it), server GC
/// (two heaps collecting in parallel: fewer, shorter pauses when the machine is idle, none of it when loaded, and a
/// heap per core for every command), non-concurrent GC (longer blocking gen2), <c>GCLatencyMode.LowLatency</c>
/// (thousands of gen0 collections).</para>
/// <para>Only the <c>run</c> command takes it, from the process's entry point: <c>fuzz</c> and <c>serve</c> make
/// garbage for as long as they run, and tests that call the commands in a shared process must not change its
/// collector. A run that allocates more than the allowance (a scenario making that much garbage, or a model larger than
/// it) leaves the region at that point, through one collection, and goes on as any process would; so the memory this
/// can cost is at most the allowance, which is at most a quarter of what the collector may use.</para>
/// </remarks>
internal static class RunProcessGc
{
    /// <summary>The most allocated without a collection: 1 GiB.</summary>
    public const long AllowanceBytes = 1L << 30;

    /// <summary>Starts the allowance when <paramref name="args"/> is a <c>run</c> command line; returns whether it
    /// started. A host where the collector cannot grant it (a tight memory limit) runs as before.</summary>
    public static bool EnterFor(string[] args)
    {
        if (args.Length == 0 || args[0] != "run")
        {
            return false;
        }
        long size = Math.Min(AllowanceBytes, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);
        try
        {
            return size > 0 && GC.TryStartNoGCRegion(size);
        }
        catch (ArgumentOutOfRangeException)
        {
            // More than the collector can set aside without a collection on this host.
            return false;
        }
    }
}
