using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// MAP_POPULATE of private anonymous memory on a fresh host whose frames are scattered in runs of 1 or 16 pages (issue
/// 16): the allocator's slot permutation, the free and reference maps and the page-table fill, what the shattered-64g
/// scenario spends before its MAP_DMA. The host has 1/8 more RAM than is populated, as that scenario's 72 GiB for 64.
/// Divide the mean by the pages (262,144 per GiB) for the cost per page.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1)]
public class PopulateBenchmarks
{
    private const ulong GiB = 1UL << 30;
    private Machine _machine = null!;
    private AddressSpace _mm = null!;

    /// <summary>GiB populated.</summary>
    [Params(4, 64)]
    public int Gib { get; set; }

    /// <summary>Pages per physically contiguous run of host frames.</summary>
    [Params(1, 16)]
    public int RunPages { get; set; }

    /// <summary>A fresh host each time: the allocator's cursor only moves forward.</summary>
    [IterationSetup]
    public void Setup()
    {
        _machine = new Machine((ulong)Gib * GiB * 9 / 8, 12, FrameLayout.ScatteredRuns((ulong)RunPages, 7));
        _mm = _machine.Spawn("populate").Mm!;
    }

    /// <summary>Dense windows of the free and reference maps (the probe reports them: a populate's bulk and per-run paths
    /// leave the same).</summary>
    internal (int Free, int Refs) DenseWindows => (_machine.Memory.DenseWindowsForTests().Free, _machine.Memory.DenseWindowsForTests().Refs);

    /// <summary>mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE) of the whole size.</summary>
    [Benchmark]
    public long MmapPopulate()
    {
        long r = _mm.Mmap(0, (ulong)Gib * GiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate);
        if (r < 0 || _machine.Memory.FreeFrameCount != (ulong)Gib * GiB / 8 / 4096)
        {
            throw new InvalidOperationException($"populate failed: {r}, {_machine.Memory.FreeFrameCount} frames free");
        }
        return r;
    }
}

/// <summary>
/// The populate of <see cref="PopulateBenchmarks"/> as a plain loop for profiling and CPU-time comparison on a loaded
/// machine: a fresh host and MAP_POPULATE of <c>GIB</c> GiB on frames scattered in <c>RUN_PAGES</c>-page runs,
/// <c>REPEATS</c> times; prints the process CPU time of each populate per page, and the calling thread's own CPU time:
/// the populate computes the next batch of the permutation on another thread, so on an idle machine with a core to
/// spare its wall time is the calling thread's CPU time, which a loaded machine does not inflate as it does wall time.
/// Run with <c>--populate RUN_PAGES GIB [REPEATS]</c>.
/// </summary>
internal static partial class PopulateProbe
{
    public static void Run(TextWriter output, int runPages, int gib, int repeats)
    {
        var bench = new PopulateBenchmarks { Gib = gib, RunPages = runPages };
        double pages = gib * 262144.0;
        for (int i = 0; i < repeats; i++)
        {
            bench.Setup();
            TimeSpan cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            double thread0 = ThreadCpuSeconds();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            bench.MmapPopulate();
            double wall = watch.Elapsed.TotalSeconds;
            double thread = ThreadCpuSeconds() - thread0;
            TimeSpan cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu0;
            output.WriteLine($"populate {gib} GiB on {runPages}-page runs: {cpu.TotalSeconds:F3} s CPU ({cpu.TotalNanoseconds / pages:F1} ns/page), calling thread {thread:F3} s CPU ({thread * 1e9 / pages:F1} ns/page), {wall:F3} s wall; dense windows (free, refs) {bench.DenseWindows}");
        }
    }

    // CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in seconds.
    private static double ThreadCpuSeconds()
    {
        const int ClockThreadCpuTime = 3;
        return ClockGetTime(ClockThreadCpuTime, out Timespec t) == 0 ? t.Seconds + (t.Nanoseconds / 1e9) : double.NaN;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec time);

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
