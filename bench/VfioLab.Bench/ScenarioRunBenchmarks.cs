using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace VfioLab.Bench;

/// <summary>
/// The whole <c>vfiolab run</c> process on the 64 GiB 1-page-run scenario (issue 16: "the same figures reachable from a
/// scenario: <c>vfiolab run</c> of a 64 GiB 1-page-run scenario finishes in a few seconds, whole process"):
/// <c>bench/scenarios/shattered-64g.yaml</c>, with the invariant checker after every step as <c>run</c> defaults to,
/// and with <c>--no-check</c>; each spawned and waited for. The builds are named in
/// <see cref="StartupBenchmarks.ToolsVariable"/> as for <see cref="StartupBenchmarks"/> (<c>name=path;...</c>, each an
/// executable: the apphost <c>src/VfioLab.Cli/bin/Release/net10.0/VfioLab.Cli</c> of a build, or a published one).
/// One spawn takes seconds and a few hundred MB, hence few iterations.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class ScenarioRunBenchmarks
{
    private string _path = string.Empty;
    private string _scenario = string.Empty;

    /// <summary>The build of the tool measured (a name from <see cref="StartupBenchmarks.ToolsVariable"/>).</summary>
    [ParamsSource(nameof(ToolNames))]
    public string Tool { get; set; } = string.Empty;

    /// <summary>The names in <see cref="StartupBenchmarks.ToolsVariable"/>, as <see cref="StartupBenchmarks"/> lists them.</summary>
    public static IEnumerable<string> ToolNames() => StartupBenchmarks.ToolNames();

    [GlobalSetup]
    public void Setup()
    {
        _path = StartupBenchmarks.ReadTools()[Tool];
        if (!File.Exists(_path))
        {
            throw new FileNotFoundException($"{StartupBenchmarks.ToolsVariable}: the build '{Tool}' is not at '{_path}'", _path);
        }
        // The scenario file of this checkout: from the benchmark's directory up to the folder holding bench/scenarios.
        const string Relative = "bench/scenarios/shattered-64g.yaml";
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, Relative)))
            {
                _scenario = Path.Combine(dir.FullName, Relative);
                return;
            }
        }
        throw new FileNotFoundException($"{Relative} not found above {AppContext.BaseDirectory}", Relative);
    }

    /// <summary><c>vfiolab run bench/scenarios/shattered-64g.yaml</c>: populate, MAP_DMA, UNMAP_DMA of 64 GiB, checked.</summary>
    [Benchmark(Baseline = true)]
    public int Run() => Spawn("run", _scenario);

    /// <summary>The same with <c>--no-check</c>.</summary>
    [Benchmark]
    public int RunNoCheck() => Spawn("run", "--no-check", _scenario);

    // A run whose steps did not all pass exits non-zero and fails the benchmark.
    private int Spawn(params string[] arguments) => StartupBenchmarks.Spawn(Tool, _path, arguments);
}
