namespace VfioLab.Bench;

/// <summary>The 4 KiB pair of <see cref="PairPeerBenchmarks"/> in a plain loop, for a sampling profiler
/// (<c>--pair-loop N</c>: N pairs, then the mean wall time, the process's user CPU time and the bytes allocated per pair;
/// the CPU time, setup excluded, is the figure to compare on a loaded machine); BenchmarkDotNet's figures are the ones recorded.
/// <c>--pair-loop N tera</c> loops <see cref="Type1Benchmarks.MapUnmap1TiBOn1GiBPages"/> instead (issue 16's no-regression
/// target, 1 TiB on 1 GiB pages ≤ 1 µs), with the same figures; <c>--pair-loop N moving</c> loops
/// <see cref="PairPeerBenchmarks.ModelMapUnmap4KiBMoving"/> (the pair at a different gap each time).</summary>
internal static class PairLoop
{
    public static void Run(TextWriter output, int pairs, bool tera = false, bool moving = false)
    {
        var b = new PairPeerBenchmarks();
        var t = new Type1Benchmarks();
        if (tera)
        {
            t.SetupTera();
        }
        else
        {
            b.Setup();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        TimeSpan user = self.UserProcessorTime;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < pairs; i++)
        {
            if (tera)
            {
                t.MapUnmap1TiBOn1GiBPages();
            }
            else if (moving)
            {
                b.ModelMapUnmap4KiBMoving();
            }
            else
            {
                b.ModelMapUnmap4KiB();
            }
        }
        double ns = watch.Elapsed.TotalMilliseconds * 1e6 / pairs;
        double bytes = (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / pairs;
        self.Refresh();
        double cpu = (self.UserProcessorTime - user).TotalMilliseconds * 1e6 / pairs;
        output.WriteLine($"{ns:F0} ns ({cpu:F0} ns of user CPU) and {bytes:F0} B allocated per {(tera ? "1 TiB" : moving ? "moving 4 KiB" : "4 KiB")} pair");
        if (!tera)
        {
            b.Cleanup();
        }
    }
}
