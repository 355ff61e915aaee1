using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// Not BenchmarkDotNet: <c>RunMapBenchmarks</c>' operations and lookups in a page table of one-page runs, N times
/// each, timed by the process's user CPU time per phase (steadier than wall time on a loaded machine; compare
/// builds by alternating runs). Run with <c>--runmap-loop N</c>.
/// </summary>
internal static class RunMapLoop
{
    public static void Run(TextWriter output, int n)
    {
        var tags = new RunMap<RunMapBenchmarks.Tag>();
        for (ulong i = 0; i < 65535; i++)
        {
            tags.Set(i * 2, i * 2, new RunMapBenchmarks.Tag(i));
        }
        ulong next = (65535 * 2) + 2;
        int found = 0;
        Phase(output, "SetThenRemove among 65,535", n, () =>
        {
            for (int i = 0; i < n; i++)
            {
                tags.Set(next, next, new RunMapBenchmarks.Tag(next));
                found += tags.TryGet(next, out _) ? 1 : 0;
                tags.Remove(next, next);
            }
        });
        Phase(output, "LookupAmong65535", n, () =>
        {
            for (int i = 0; i < n; i++)
            {
                found += tags.TryGet((ulong)(i & 0xFFFF) * 2, out _) ? 1 : 0;
            }
        });
        var ptes = new RunMap<Pte>();
        const ulong Pages = 1 << 22;
        Phase(output, "page table of 4 Mi one-page runs, filled in order (per page)", (int)Pages, () =>
        {
            for (ulong i = 0; i < Pages; i++)
            {
                ptes.Set(i, i, new Pte(new Pfn((i * 7919) % 3_000_017), true));
            }
        });
        var rng = new SplitMix64(3);
        Phase(output, "page table lookup at random pages", n, () =>
        {
            for (int i = 0; i < n; i++)
            {
                found += ptes.TryGetValue(rng.Next() % Pages, out _) ? 1 : 0;
            }
        });
        Phase(output, "page table emptied in order, 1 page per call (per page)", (int)Pages, () =>
        {
            for (ulong i = 0; i < Pages; i++)
            {
                ptes.Remove(i, i);
            }
        });
        output.WriteLine($"(found {found})");
    }

    private static void Phase(TextWriter output, string name, int n, Action body)
    {
        TimeSpan cpu = System.Diagnostics.Process.GetCurrentProcess().UserProcessorTime;
        body();
        double ns = (System.Diagnostics.Process.GetCurrentProcess().UserProcessorTime - cpu).TotalNanoseconds / n;
        output.WriteLine($"{name}: {ns:F1} ns user CPU per operation");
    }
}
