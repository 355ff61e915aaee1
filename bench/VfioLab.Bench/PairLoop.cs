namespace VfioLab.Bench;

/// <summary>The 4 KiB pair of <see cref="PairPeerBenchmarks"/> in a plain loop, for a sampling profiler
/// (<c>--pair-loop N</c>: N pairs, then the mean wall time, the process's user CPU time and the bytes allocated per pair;
/// the CPU time, setup excluded, is the figure to compare on a loaded machine); BenchmarkDotNet's figures are the ones recorded.</summary>
internal static class PairLoop
{
    public static void Run(TextWriter output, int pairs)
    {
        var b = new PairPeerBenchmarks();
        b.Setup();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        TimeSpan user = self.UserProcessorTime;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < pairs; i++)
        {
            b.ModelMapUnmap4KiB();
        }
        double ns = watch.Elapsed.TotalMilliseconds * 1e6 / pairs;
        double bytes = (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / pairs;
        self.Refresh();
        double cpu = (self.UserProcessorTime - user).TotalMilliseconds * 1e6 / pairs;
        output.WriteLine($"{ns:F0} ns ({cpu:F0} ns of user CPU) and {bytes:F0} B allocated per 4 KiB pair");
        b.Cleanup();
    }
}
