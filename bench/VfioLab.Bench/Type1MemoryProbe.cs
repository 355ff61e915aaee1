using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// Managed memory retained per live DMA mapping (target: under 256 bytes): heap size after a full
/// collection, before and after creating 65,535 4 KiB mappings, divided by their number. Not a
/// BenchmarkDotNet benchmark (that measures allocation per operation, not what stays live); run with
/// <c>--memory-per-mapping</c>.
/// </summary>
internal static class Type1MemoryProbe
{
    public static void Run(TextWriter output)
    {
        var rig = new Type1Rig(2UL << 30, FrameLayout.Contiguous, dmaEntryLimit: 65535);
        ulong ram = rig.Mmap(65535 * 4096UL, MmapFlags.Populate);
        rig.MapOrThrow(0x1_0000_0000, ram, 4096);
        rig.UnmapOrThrow(0x1_0000_0000, 4096);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (ulong i = 0; i < 65535; i++)
        {
            rig.MapOrThrow(0x1_0000_0000 + (i * 8192), ram + (i * 4096), 4096);
        }
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(rig);
        output.WriteLine($"65535 live 4 KiB mappings: {after - before} bytes retained, {(after - before) / 65535.0:F1} bytes per mapping");
    }
}

/// <summary>
/// Managed memory per 4 KiB page of a populated, DMA-mapped range on shattered host frames (issue 16: ≤ 32
/// bytes per page at the peak): the heap after a full collection before the mmap, after populating it and after
/// MAP_DMA, divided by the pages; then the time of MAP_DMA and UNMAP_DMA, the peak of the managed heap (live state
/// and garbage not yet collected, sampled every millisecond from the empty rig through populate, MAP and UNMAP: the
/// issue's "peak managed memory") and the process's peak working set (which adds the runtime and the GC's reserve).
/// Run with <c>--shattered-memory RUN_PAGES GIB</c>.
/// </summary>
internal static class ShatteredMemoryProbe
{
    public static void Run(TextWriter output, ulong runPages, ulong gib, int repeats = 1)
    {
        const ulong GiB = 1UL << 30;
        ulong pages = gib * GiB / 4096;
        var rig = new Type1Rig((gib + 8) * GiB, FrameLayout.ScatteredRuns(runPages, 7), dmaEntryLimit: 65535);
        long empty = GC.GetTotalMemory(forceFullCollection: true);
        using var peak = new ManagedHeapPeak();
        using AllocationTicks? ticks = Environment.GetEnvironmentVariable("VFIOLAB_BENCH_ALLOCS") == "1" ? new AllocationTicks() : null;
        ulong ram = rig.Mmap(gib * GiB, MmapFlags.Populate);
        long populatePeak = peak.TakePhase();
        long populated = GC.GetTotalMemory(forceFullCollection: true);
        _ = peak.TakePhase();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan cpu0 = ProcessCpu();
        long alloc0 = GC.GetTotalAllocatedBytes(precise: true);
        rig.MapOrThrow(4 * GiB, ram, gib * GiB);
        long mapAlloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
        double map = watch.Elapsed.TotalSeconds;
        TimeSpan mapCpu = ProcessCpu() - cpu0;
        long mapPeak = peak.TakePhase();
        string[] mapTicks = ticks is null ? [] : [.. ticks.Take(pages)];
        long mapped = GC.GetTotalMemory(forceFullCollection: true);
        // The per-map census walks the model by reflection: only on request, so it never counts in the CPU time.
        string[] census = Environment.GetEnvironmentVariable("VFIOLAB_BENCH_CENSUS") == "1" ? [.. RunMapCensus.Lines(rig, pages)] : [];
        _ = peak.TakePhase();
        watch.Restart();
        cpu0 = ProcessCpu();
        alloc0 = GC.GetTotalAllocatedBytes(precise: true);
        rig.UnmapOrThrow(4 * GiB, gib * GiB);
        long unmapAlloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
        double unmap = watch.Elapsed.TotalSeconds;
        TimeSpan unmapCpu = ProcessCpu() - cpu0;
        long unmapPeak = peak.TakePhase();
        string[] unmapTicks = ticks is null ? [] : [.. ticks.Take(pages)];
        if (repeats > 1)
        {
            mapCpu = TimeSpan.Zero;
            unmapCpu = TimeSpan.Zero;
        }
        // The cheapest pair too: on a loaded machine the mean moves with whoever else runs, the minimum much less.
        TimeSpan minPair = TimeSpan.MaxValue;
        // What the collector costs the pairs after the first (issue 16: MAP allocates the IOPTE and PTE leaves that
        // UNMAP drops): collections per generation, the pause time, and the process's kernel CPU (page faults of
        // fresh heap pages among it) against its user CPU.
        _ = ticks?.Take(pages).ToArray();
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        TimeSpan pause0 = GC.GetTotalPauseDuration();
        long pairsAlloc0 = GC.GetTotalAllocatedBytes(precise: true);
        (TimeSpan user0, TimeSpan sys0) = UserSystemCpu();
        for (int i = 1; i < repeats; i++)
        {
            TimeSpan pair0 = mapCpu + unmapCpu;
            // More pairs, for a profiler to see the pair rather than the populating fault; the mean CPU time of these
            // pairs is reported (warm: the JIT reaches its final tier in the first ones).
            cpu0 = ProcessCpu();
            rig.MapOrThrow(4 * GiB, ram, gib * GiB);
            mapCpu += ProcessCpu() - cpu0;
            cpu0 = ProcessCpu();
            rig.UnmapOrThrow(4 * GiB, gib * GiB);
            unmapCpu += ProcessCpu() - cpu0;
            minPair = TimeSpan.FromTicks(Math.Min(minPair.Ticks, (mapCpu + unmapCpu - pair0).Ticks));
        }
        (TimeSpan user1, TimeSpan sys1) = UserSystemCpu();
        string[] pairTicks = ticks is null ? [] : [.. ticks.Take(pages * (ulong)Math.Max(1, repeats - 1))];
        double pairAlloc = (GC.GetTotalAllocatedBytes(precise: true) - pairsAlloc0) / (double)Math.Max(1, repeats - 1) / pages;
        string gcLine = $"pairs 2-{repeats}: collections gen0 {GC.CollectionCount(0) - gen0}, gen1 {GC.CollectionCount(1) - gen1}, " +
            $"gen2 {GC.CollectionCount(2) - gen2}; GC pauses {(GC.GetTotalPauseDuration() - pause0).TotalMilliseconds:F1} ms; " +
            $"user CPU {(user1 - user0).TotalSeconds:F3} s, system CPU {(sys1 - sys0).TotalSeconds:F3} s; allocated {pairAlloc:F1} B/page a pair";
        if (repeats > 1)
        {
            mapCpu /= repeats - 1;
            unmapCpu /= repeats - 1;
        }
        long peakBytes = peak.Stop() - empty;
        GC.KeepAlive(rig);
        // User + system CPU time of the process: steadier than the wall clock on a loaded machine.
        output.WriteLine($"CPU: MAP {mapCpu.TotalSeconds:F3} s, UNMAP {unmapCpu.TotalSeconds:F3} s, " +
            $"{(mapCpu + unmapCpu).TotalSeconds * 1e9 / pages:F0} ns/page " + (repeats > 1 ? $"(mean of pairs 2-{repeats}; cheapest pair {minPair.TotalSeconds * 1e9 / pages:F0})" : "(one pair)"));
        output.WriteLine($"{gib} GiB in {runPages}-page runs ({pages} pages): populated {(populated - empty) / (double)pages:F1} B/page, " +
            $"mapped {(mapped - empty) / (double)pages:F1} B/page (DMA part {(mapped - populated) / (double)pages:F1}); " +
            $"MAP {map:F2} s, UNMAP {unmap:F2} s, {(map + unmap) * 1e9 / pages:F0} ns/page; " +
            $"peak managed heap {peakBytes / (double)pages:F1} B/page; peak working set {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (double)pages:F1} B/page");
        output.WriteLine($"peak managed heap by phase (B/page): populate {(populatePeak - empty) / (double)pages:F1}, " +
            $"MAP {(mapPeak - empty) / (double)pages:F1}, UNMAP {(unmapPeak - empty) / (double)pages:F1}; " +
            $"allocated by MAP {mapAlloc / (double)pages:F1} B/page, by UNMAP {unmapAlloc / (double)pages:F1} B/page");
        if (repeats > 1)
        {
            output.WriteLine(gcLine);
        }
        if (ticks is not null)
        {
            output.WriteLine("allocated by type (sampled), MAP:");
            Array.ForEach(mapTicks, output.WriteLine);
            output.WriteLine("UNMAP:");
            Array.ForEach(unmapTicks, output.WriteLine);
            output.WriteLine("pairs 2-N, per pair:");
            Array.ForEach(pairTicks, output.WriteLine);
        }
        if (census.Length > 0)
        {
            output.WriteLine("run maps of 1 MiB or more while mapped (field: bytes per page, runs):");
            foreach (string line in census)
            {
                output.WriteLine(line);
            }
        }
    }

    private static (TimeSpan User, TimeSpan System) UserSystemCpu()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return (self.UserProcessorTime, self.PrivilegedProcessorTime);
    }

    private static TimeSpan ProcessCpu()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }
}

/// <summary>The largest managed heap size (<see cref="GC.GetTotalMemory(bool)"/> without a collection: live objects
/// and garbage not yet collected) seen by a thread sampling it every millisecond until <see cref="Stop"/>.</summary>
internal sealed class ManagedHeapPeak : IDisposable
{
    private readonly Thread _sampler;
    private volatile bool _stop;
    private long _peak;
    private long _phasePeak;

    public ManagedHeapPeak()
    {
        _peak = GC.GetTotalMemory(forceFullCollection: false);
        _phasePeak = _peak;
        _sampler = new Thread(Sample) { IsBackground = true, Name = "heap peak" };
        _sampler.Start();
    }

    /// <summary>The peak since the last call (or the start), sampling now once more; the next phase starts here.</summary>
    public long TakePhase()
    {
        long now = GC.GetTotalMemory(forceFullCollection: false);
        long phase = Math.Max(Interlocked.Exchange(ref _phasePeak, now), now);
        return phase;
    }

    /// <summary>Stops sampling and returns the peak in bytes (one last sample included).</summary>
    public long Stop()
    {
        _stop = true;
        _sampler.Join();
        return Math.Max(Interlocked.Read(ref _peak), GC.GetTotalMemory(forceFullCollection: false));
    }

    public void Dispose()
    {
        if (!_stop)
        {
            Stop();
        }
    }

    private void Sample()
    {
        while (!_stop)
        {
            long now = GC.GetTotalMemory(forceFullCollection: false);
            if (now > Interlocked.Read(ref _peak))
            {
                Interlocked.Exchange(ref _peak, now);
            }
            long phase = Interlocked.Read(ref _phasePeak);
            while (now > phase)
            {
                long seen = Interlocked.CompareExchange(ref _phasePeak, now, phase);
                if (seen == phase)
                {
                    break;
                }
                phase = seen;
            }
            Thread.Sleep(1);
        }
    }
}
