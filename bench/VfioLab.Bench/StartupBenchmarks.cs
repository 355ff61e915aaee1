using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace VfioLab.Bench;

/// <summary>
/// Whole-process start-up of the <c>vfiolab</c> tool, as a user meets it: <c>vfiolab --help</c> (the runtime
/// starting and printing a page) and <c>vfiolab run</c> (the built-in default scenario), each spawned and waited for.
/// <c>Help</c> is the baseline, so the Ratio column is run / help for each build of the tool (issue 12 item 9:
/// run at most 2x help). The builds are named in <c>VFIOLAB_STARTUP_TOOLS</c> as <c>name=path;name=path</c>, each
/// path an executable; <c>bench/startup.sh</c> publishes the JIT, ReadyToRun and Native AOT builds and sets it.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 30)]
public class StartupBenchmarks
{
    /// <summary>The environment variable naming the builds to measure.</summary>
    public const string ToolsVariable = "VFIOLAB_STARTUP_TOOLS";

    private const string Unset = "unset";

    private string _path = string.Empty;

    /// <summary>The build of the tool measured (a name from <see cref="ToolsVariable"/>).</summary>
    [ParamsSource(nameof(ToolNames))]
    public string Tool { get; set; } = string.Empty;

    /// <summary>The names in <see cref="ToolsVariable"/>, in its order; without it one placeholder, so that the
    /// other benchmark sets still list and run, and this one fails in its setup saying what to set.</summary>
    public static IEnumerable<string> ToolNames() =>
        string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ToolsVariable)) ? [Unset] : ReadTools().Keys;

    [GlobalSetup]
    public void Setup()
    {
        _path = ReadTools()[Tool];
        if (!File.Exists(_path))
        {
            throw new FileNotFoundException($"{ToolsVariable}: the build '{Tool}' is not at '{_path}'", _path);
        }
        // The first spawn also proves the build works: a benchmark of a failing command measures nothing.
        Spawn("run");
    }

    /// <summary><c>vfiolab --help</c>: start-up with no model work.</summary>
    [Benchmark(Baseline = true)]
    public int Help() => Spawn("--help");

    /// <summary><c>vfiolab run</c>: the built-in default scenario (35 steps, invariants checked after each).</summary>
    [Benchmark]
    public int Run() => Spawn("run");

    private int Spawn(string argument) => Spawn(Tool, _path, argument);

    /// <summary>Runs build <paramref name="tool"/> at <paramref name="path"/> with <paramref name="arguments"/> and waits
    /// for it, its output drained and dropped; a non-zero exit throws (a benchmark of a failing command measures
    /// nothing).</summary>
    internal static int Spawn(string tool, string path, params string[] arguments)
    {
        var start = new ProcessStartInfo(path, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {path}");
        // Drain both pipes so the child never blocks on a full one; the output itself is not kept.
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string errors = stderr.GetAwaiter().GetResult();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool}: '{path} {string.Join(' ', arguments)}' exited {process.ExitCode}: {errors}");
        }
        return process.ExitCode;
    }

    internal static Dictionary<string, string> ReadTools()
    {
        string value = Environment.GetEnvironmentVariable(ToolsVariable) ?? string.Empty;
        var tools = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string entry in value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == entry.Length - 1)
            {
                throw new InvalidOperationException($"{ToolsVariable}: '{entry}' is not name=path");
            }
            tools[entry[..eq]] = Path.GetFullPath(entry[(eq + 1)..]);
        }
        if (tools.Count == 0)
        {
            throw new InvalidOperationException(
                $"{ToolsVariable} is not set: run bench/startup.sh, or set it to name=path;... of vfiolab executables");
        }
        return tools;
    }
}
