namespace VfioLab.Preload.Tests;

/// <summary>
/// Builds native/preload (the preload, its fake server and tests, the example clients) with make and the system C
/// compiler, once per test run. A machine without cc or make fails every test that needs them, loudly: the README's
/// set-up (<c>bash .ci/install-prereqs.sh</c>) installs both.
/// </summary>
internal static class NativeBuild
{
    private static readonly Lazy<ProcessRun> LazyBuild = new(Run, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Builds if not yet built in this run; throws with make's output when the build fails.</summary>
    public static void Ensure()
    {
        var run = LazyBuild.Value;
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"make -C native/preload failed (exit {run.ExitCode}):\n{run.Both}");
        }
    }

    private static ProcessRun Run()
    {
        foreach (var tool in new[] { "make", "cc" })
        {
            if (!OnPath(tool))
            {
                throw new InvalidOperationException(
                    $"'{tool}' is not on PATH: the preload and the example clients are built with make and the system C compiler; "
                    + "install them with `bash .ci/install-prereqs.sh`");
            }
        }

        return ProcessRun.Start("make", ["-C", RepoPaths.Native, "OUT=" + RepoPaths.Build, "all"], timeout: TimeSpan.FromMinutes(5));
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
}
