namespace VfioLab.Bench;

/// <summary>The 4 KiB pair of <see cref="PairPeerBenchmarks"/> in a plain loop, for a sampling profiler
/// (<c>--pair-loop N</c>: N pairs, then the mean time and bytes allocated); BenchmarkDotNet's figures are the ones recorded.</summary>
internal static class PairLoop
{
    public static void Run(TextWriter output, int pairs)
    {
        var b = new PairPeerBenchmarks();
        b.Setup();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < pairs; i++)
        {
            b.ModelMapUnmap4KiB();
        }
        double ns = watch.Elapsed.TotalMilliseconds * 1e6 / pairs;
        double bytes = (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / pairs;
        output.WriteLine($"{ns:F0} ns and {bytes:F0} B allocated per 4 KiB pair");
        b.Cleanup();
    }
}
