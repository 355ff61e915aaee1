using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Bench;

/// <summary>
/// What invariant checking after every call costs (issue 16: at most 1.3x no checking): <see cref="Steps"/>
/// single-page MAP_DMA calls, one after the other, through a lab process's system calls (the typed client), with
/// <see cref="InvariantChecking.AfterEveryCall"/> (the incremental check after each call, the full sweep after the
/// last) against no checking. The ratio column is the target's figure.
/// </summary>
/// <remarks>
/// Each invocation needs a fresh container (65,535 is the mapping limit), so each iteration is one invocation after an
/// untimed setup that builds a fresh host and then collects the garbage of the last one (<see cref="MapSteps.Prepare"/>):
/// both arms start their measured region from the same state, a collected heap, and no collection of an earlier host
/// can land in it. Why: with the setup alone and <c>--job short</c>'s three iterations, the 65,535-call figure came out
/// 0.98 in one idle run (docs/benchmarks.md, 2026-12-07 11:51) because the no-check arm's mean was 1.6x its usual value
/// (one slow iteration of three). So the iteration and warm-up counts are set here and override the job's: 25 measured
/// runs of each arm, after 5 warm-up runs (the JIT's tiers settle over the first), which the probe
/// (<c>--check-cost 65535 31</c>, CPU time, median of runs 2-31) agrees with.
/// </remarks>
[MemoryDiagnoser]
[InvocationCount(1)]
[WarmupCount(5)]
[IterationCount(25)]
public class CheckCostMapStepsBenchmarks
{
    private MapSteps? _run;

    /// <summary>Single-page MAP_DMA calls (65,535 is the default <c>dma_entry_limit</c>).</summary>
    [Params(8000, 65535)]
    public int Steps { get; set; }

    [IterationSetup(Target = nameof(NoCheck))]
    public void SetupNoCheck() => _run = MapSteps.Prepare(ref _run, Steps, check: false);

    [IterationSetup(Target = nameof(CheckAfterEveryCall))]
    public void SetupCheck() => _run = MapSteps.Prepare(ref _run, Steps, check: true);

    /// <summary>With <c>VFIOLAB_BENCH_FAULTS=1</c>: the minor page faults of the iteration just measured (from the end of
    /// its setup), written to the benchmark process's output (BenchmarkDotNet's log). Untimed.</summary>
    [IterationCleanup]
    public void ReportFaults()
    {
        if (_run is { } run && Environment.GetEnvironmentVariable("VFIOLAB_BENCH_FAULTS") == "1")
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"// check-cost {(run.Checked ? "check" : "no-check")} {Steps}: {CheckCost.MinorFaults() - run.FaultsAtStart} minor faults since the setup"));
        }
    }

    /// <summary>The calls without the checker.</summary>
    [Benchmark(Baseline = true)]
    public void NoCheck() => _run!.Run();

    /// <summary>The calls with the checker after every one, and the full sweep at the end.</summary>
    [Benchmark]
    public void CheckAfterEveryCall() => _run!.Run();
}

/// <summary>A lab host with one process, a populated buffer of <c>steps</c> pages and a type1v2 container, ready to
/// map the buffer page by page.</summary>
internal sealed class MapSteps
{
    private const ulong Iova = 1UL << 32;
    private readonly LabHost _host;
    private readonly Container _container;
    private readonly ulong _vaddr;
    private readonly int _steps;
    private readonly bool _check;

    public MapSteps(int steps, bool check)
    {
        _steps = steps;
        _check = check;
        ulong bytes = (ulong)steps * 4096;
        _host = new LabHostBuilder().WithMemory(bytes + (256UL << 20)).WithParameter("dma_entry_limit", 65535)
            .AddPciDevice("gpu", "0000:01:00.0", d => d.Group(1)).Build();
        LabProcess qemu = _host.Spawn("qemu", LabHostBuilder.Unlimited);
        _vaddr = (ulong)qemu.Syscalls.Mmap(0, bytes, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
        _container = Container.Open(qemu.Syscalls);
        Group.Open(qemu.Syscalls, 1).SetContainer(_container);
        _container.SetIommu(VfioExtension.Type1v2Iommu);
        if (check)
        {
            CheckCost.Clean(_host.CheckInvariants());
            _host.Checking = InvariantChecking.AfterEveryCall;
        }
    }

    /// <summary>A fresh run, built after letting go of <paramref name="last"/> and followed by a full blocking
    /// collection, so the measured region that follows (the benchmark's and the probe's alike) starts from a collected
    /// heap and no collection of an earlier host's garbage lands in it.</summary>
    public static MapSteps Prepare(ref MapSteps? last, int steps, bool check)
    {
        last = null;
        var run = new MapSteps(steps, check);
        CheckCost.CollectAll();
        run.FaultsAtStart = CheckCost.MinorFaults();
        return run;
    }

    /// <summary>The process's minor page faults when <see cref="Prepare"/> returned this run.</summary>
    public long FaultsAtStart { get; private set; }

    /// <summary>The MAP_DMA calls (each checked when asked), then the full sweep when checking.</summary>
    public void Run()
    {
        Calls();
        if (_check)
        {
            Sweep();
        }
    }

    /// <summary>The MAP_DMA calls, each checked when asked.</summary>
    public void Calls()
    {
        for (int i = 0; i < _steps; i++)
        {
            ulong offset = (ulong)i * 4096;
            _container.MapDma(Iova + offset, _vaddr + offset, 4096);
        }
    }

    /// <summary>Whether the calls are checked (and <see cref="Run"/> ends with the full sweep).</summary>
    public bool Checked => _check;

    /// <summary>One full sweep of the host (it must find nothing).</summary>
    public void Sweep() => CheckCost.Clean(_host.CheckInvariants());
}

/// <summary>
/// The fragmented workload of issue 16, bench/scenarios/shattered-4g.yaml (4 GiB populated on host frames scattered
/// in 1-page runs, mapped and unmapped in one call each), with and without the checker after every step.
/// </summary>
/// <remarks>As <see cref="CheckCostMapStepsBenchmarks"/>: one invocation per iteration after an untimed setup that
/// prepares a fresh run and collects the last one's garbage, with its own iteration counts (the run is ~0.3 s).</remarks>
[MemoryDiagnoser]
[InvocationCount(1)]
[WarmupCount(2)]
[IterationCount(9)]
public class CheckCostShatteredBenchmarks
{
    private PreparedScenario _run = null!;

    [IterationSetup(Target = nameof(NoCheck))]
    public void SetupNoCheck() => _run = CheckCost.PrepareShattered(check: false);

    [IterationSetup(Target = nameof(CheckAfterEveryStep))]
    public void SetupCheck() => _run = CheckCost.PrepareShattered(check: true);

    /// <summary>The scenario without the checker.</summary>
    [Benchmark(Baseline = true)]
    public void NoCheck() => CheckCost.Passed(_run.Execute());

    /// <summary>The scenario with the checker after every step.</summary>
    [Benchmark]
    public void CheckAfterEveryStep() => CheckCost.Passed(_run.Execute());
}

/// <summary>The workloads of the check-cost benchmarks, and <c>--check-cost</c>: the same runs in this process,
/// timed in CPU time (the steadier figure on a loaded machine).</summary>
internal static class CheckCost
{
    /// <summary>Fails loudly on a violation.</summary>
    public static void Clean(IReadOnlyList<LabViolation> found)
    {
        if (found.Count > 0)
        {
            throw new InvalidOperationException($"{found.Count} violation(s), first {found[0].Invariant}: {found[0].Message}");
        }
    }

    /// <summary>A scenario of <paramref name="steps"/> single-page MAP_DMA steps over one populated mmap (the parser's
    /// node budget takes up to about 15,000).</summary>
    public static ScenarioDocument MapSteps(int steps)
    {
        var text = new StringBuilder();
        ulong bytes = (ulong)steps * 4096;
        text.Append(CultureInfo.InvariantCulture, $$"""
            vfiolab: 1
            name: map-steps-{{steps}}
            description: "issue 16: {{steps}} single-page map_dma steps, one at a time"
            host:
              memory: {{(bytes / (1024 * 1024)) + 256}}MiB
              iommu: vt-d
              params: { dma_entry_limit: 65535 }
            devices:
              - { name: gpu, address: "0000:01:00.0", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 16MiB } ] }
            processes:
              - { name: qemu, memlock: unlimited }
            steps:
              - mmap: { size: {{bytes}}, populate: true, as: ram }
              - open: { path: /dev/vfio/vfio, as: container }
              - open: { path: /dev/vfio/1, as: group }
              - group_set_container: { fd: group, container: container }
              - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }

            """);
        for (int i = 0; i < steps; i++)
        {
            ulong offset = (ulong)i * 4096;
            text.Append(CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: container, iova: {0x1_0000_0000UL + offset}, vaddr: ram+{offset}, size: 4096, flags: [READ, WRITE] }}\n");
        }
        return ScenarioDocument.Parse(text.ToString(), $"map-steps-{steps}.yaml");
    }

    /// <summary>A full blocking, compacting collection, its finalizers run and collected too: what a check-cost run's
    /// untimed setup ends with, so no collection of an earlier run's garbage lands in the measured region.</summary>
    public static void CollectAll()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    /// <summary>shattered-4g.yaml prepared to run with or without the checker, the heap collected after.</summary>
    public static PreparedScenario PrepareShattered(bool check)
    {
        PreparedScenario prepared = ScenarioRunner.Prepare(Shattered4G(), new RunOptions { CheckInvariants = check });
        CollectAll();
        return prepared;
    }

    /// <summary>bench/scenarios/shattered-4g.yaml, found from the working directory or the assembly's upwards.</summary>
    public static ScenarioDocument Shattered4G()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (DirectoryInfo? d = new(start); d is not null; d = d.Parent)
            {
                string path = Path.Combine(d.FullName, "bench", "scenarios", "shattered-4g.yaml");
                if (File.Exists(path))
                {
                    return ScenarioDocument.Load(path);
                }
            }
        }
        throw new FileNotFoundException("bench/scenarios/shattered-4g.yaml not found above the working directory or the benchmark assembly");
    }

    /// <summary>Fails loudly when a run did not pass (a benchmark of a failing run measures nothing).</summary>
    public static void Passed(ScenarioOutcome outcome)
    {
        if (!outcome.Passed)
        {
            StepReport? bad = outcome.Steps.FirstOrDefault(s => s.Problems.Count > 0);
            throw new InvalidOperationException($"the run failed: {(bad is null ? $"{outcome.UnexpectedViolations} violation(s)" : string.Join("; ", bad.Problems))}");
        }
    }

    /// <summary><c>--check-cost STEPS|scenario-STEPS|shattered [REPEATS]</c>: the workload with and without the checker,
    /// alternately, in CPU time of this process per run (building the host is not counted): STEPS single-page MAP_DMA
    /// calls through the lab, the same as a scenario run as <c>vfiolab run</c> runs it, or shattered-4g.yaml.</summary>
    public static void Run(TextWriter output, string workload, int repeats, string arm = "both")
    {
        if (workload.StartsWith("sweepcold-", StringComparison.Ordinal))
        {
            ColdSweeps(output, int.Parse(workload["sweepcold-".Length..], CultureInfo.InvariantCulture), repeats);
            return;
        }
        if (workload.StartsWith("sweep-", StringComparison.Ordinal))
        {
            Sweeps(output, int.Parse(workload["sweep-".Length..], CultureInfo.InvariantCulture), repeats);
            return;
        }
        if (workload.StartsWith("huge-", StringComparison.Ordinal))
        {
            HugeSweeps(output, ulong.Parse(workload["huge-".Length..], CultureInfo.InvariantCulture), repeats);
            return;
        }
        var cpus = new List<double>[] { [], [] };
        for (int r = 0; r < repeats; r++)
        {
            foreach (bool check in arm switch { "check" => new[] { true }, "no-check" => [false], _ => [false, true] })
            {
                Action run;
                MapSteps? mapSteps = null;
                if (workload == "shattered")
                {
                    PreparedScenario prepared = PrepareShattered(check);
                    run = () => Passed(prepared.Execute());
                }
                else if (workload.StartsWith("scenario-", StringComparison.Ordinal))
                {
                    PreparedScenario prepared = ScenarioRunner.Prepare(MapSteps(int.Parse(workload["scenario-".Length..], CultureInfo.InvariantCulture)),
                        new RunOptions { CheckInvariants = check });
                    run = () => Passed(prepared.Execute());
                }
                else
                {
                    // As the benchmark prepares it: a fresh host, the heap collected (MapSteps.Prepare).
                    MapSteps? none = null;
                    mapSteps = VfioLab.Bench.MapSteps.Prepare(ref none, int.Parse(workload, CultureInfo.InvariantCulture), check);
                    run = mapSteps.Calls;
                }
                TimeSpan sweepCpu = TimeSpan.Zero;
                TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
                long allocated = GC.GetTotalAllocatedBytes(precise: true);
                int gen0 = GC.CollectionCount(0);
                int gen2 = GC.CollectionCount(2);
                long faults = MinorFaults();
                var wall = Stopwatch.StartNew();
                run();
                if (mapSteps is { Checked: true })
                {
                    // The final sweep that ends the benchmark's checked run, timed on its own as well.
                    TimeSpan before = Process.GetCurrentProcess().TotalProcessorTime;
                    mapSteps.Sweep();
                    sweepCpu = Process.GetCurrentProcess().TotalProcessorTime - before;
                }
                wall.Stop();
                double seconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                faults = MinorFaults() - faults;
                if (r > 0)
                {
                    cpus[check ? 1 : 0].Add(seconds);
                }
                string sweep = check && mapSteps is not null
                    ? string.Create(CultureInfo.InvariantCulture, $"\tof which the final sweep cpu {sweepCpu.TotalSeconds:F5} s")
                    : string.Empty;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{workload}\t{(check ? "check" : "no-check")}\tcpu {seconds:F5} s\twall {wall.Elapsed.TotalSeconds:F5} s\t" +
                    $"allocated {(GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1e6:F1} MB\tgen0 {GC.CollectionCount(0) - gen0}\tgen2 {GC.CollectionCount(2) - gen2}\tminor faults {faults}{sweep}"));
            }
        }
        if (repeats >= 3 && cpus[0].Count > 0 && cpus[1].Count > 0)
        {
            // The first (JIT warm-up) run of each left out; the median is the steadier figure on a loaded machine.
            double noCheck = Median(cpus[0]);
            double withCheck = Median(cpus[1]);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{workload}\tmedian of runs 2-{repeats}\tno-check cpu {noCheck:F4} s\tcheck cpu {withCheck:F4} s\tratio {withCheck / noCheck:F2}" +
                $"\tminimum\tno-check {cpus[0].Min():F4} s\tcheck {cpus[1].Min():F4} s\tratio {cpus[1].Min() / cpus[0].Min():F2}"));
        }
    }

    // --check-cost sweep-STEPS REPEATS: the full sweep alone (what ends every checked run), REPEATS times over the
    // STEPS single-page mappings of MapSteps, in CPU time per sweep and per mapping.
    private static void Sweeps(TextWriter output, int steps, int repeats)
    {
        var run = new MapSteps(steps, check: true);
        run.Run();
        var cpus = new List<double>();
        var walls = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            for (int i = 0; i < 10; i++)
            {
                run.Sweep();
            }
            walls.Add(wall.Elapsed.TotalSeconds / 10);
            cpus.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / 10);
        }
        cpus.RemoveAt(0);
        walls.RemoveAt(0);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sweep of {steps} mappings	median {Median(cpus) * 1e3:F3} ms	minimum {cpus.Min() * 1e3:F3} ms = {cpus.Min() * 1e9 / steps:F1} ns per mapping (cpu, both threads)" +
            $"	wall median {Median(walls) * 1e3:F3} ms	minimum {walls.Min() * 1e3:F3} ms"));
    }

    // --check-cost sweepcold-STEPS REPEATS: the full sweep of sweep-STEPS, each after writing a 64 MiB buffer through
    // (the caches flushed of the mappings, as they are after the calls of a run), in wall and CPU time per sweep: the
    // cold walk the final sweep of a checked run pays (issue 16: ~3.3 ms of it at 65,535 mappings on main ff21fbf).
    private static void ColdSweeps(TextWriter output, int steps, int repeats)
    {
        var run = new MapSteps(steps, check: true);
        run.Run();
        byte[] flush = new byte[64 << 20];
        var cpus = new List<double>();
        var walls = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            for (int i = 0; i < flush.Length; i += 64)
            {
                flush[i]++;
            }
            TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            run.Sweep();
            walls.Add(wall.Elapsed.TotalSeconds);
            cpus.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
        }
        // The first two (the sweep's code still tiering up) left out.
        cpus.RemoveRange(0, Math.Min(2, cpus.Count - 1));
        walls.RemoveRange(0, Math.Min(2, walls.Count - 1));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cold sweep of {steps} mappings\twall median {Median(walls) * 1e3:F3} ms\tminimum {walls.Min() * 1e3:F3} ms = {walls.Min() * 1e9 / steps:F1} ns per mapping" +
            $"\tcpu median {Median(cpus) * 1e3:F3} ms\tminimum {cpus.Min() * 1e3:F3} ms"));
    }

    // --check-cost huge-GIB REPEATS: one MAP_DMA of GIB GiB populated on host frames scattered in 1-page runs (a host of
    // 9/8 of that, as bench/scenarios/shattered-64g.yaml), then the full sweep REPEATS times, in CPU and wall time per
    // sweep: the same pass over the mapping's runs as the check after that MAP in `vfiolab run` (issue 16: ~1.15 s of
    // the 64 GiB scenario on main 0a05d4a).
    private static void HugeSweeps(TextWriter output, ulong gib, int repeats)
    {
        ulong bytes = gib << 30;
        LabHost host = new LabHostBuilder().WithMemory(bytes + (bytes / 8)).WithScatteredFrames(1, 7).WithParameter("dma_entry_limit", 65535)
            .AddPciDevice("gpu", "0000:01:00.0", d => d.Group(1)).Build();
        LabProcess qemu = host.Spawn("qemu", LabHostBuilder.Unlimited);
        ulong vaddr = (ulong)qemu.Syscalls.Mmap(0, bytes, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
        var container = Container.Open(qemu.Syscalls);
        Group.Open(qemu.Syscalls, 1).SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        container.MapDma(1UL << 32, vaddr, bytes);
        var cpus = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            Clean(host.CheckInvariants());
            wall.Stop();
            double seconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            cpus.Add(seconds);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"huge-{gib}\tsweep\tcpu {seconds:F3} s\twall {wall.Elapsed.TotalSeconds:F3} s"));
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sweep of one {gib} GiB mapping on 1-page runs\tmedian cpu {Median(cpus) * 1e3:F1} ms\tminimum {cpus.Min() * 1e3:F1} ms = {cpus.Min() * 1e9 / (bytes >> 12):F1} ns per page"));
    }

    // The process's minor page faults so far (/proc/self/stat, field 10): a first touch of memory the GC committed or
    // reused after decommitting costs one each (issue 16: the checked arm's extra milliseconds in a process of its own).
    public static long MinorFaults()
    {
        string stat = File.ReadAllText("/proc/self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7], CultureInfo.InvariantCulture);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[(n / 2) - 1] + values[n / 2]) / 2;
    }
}
