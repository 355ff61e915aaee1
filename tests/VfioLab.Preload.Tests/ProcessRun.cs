using System.Diagnostics;
using System.Text;

namespace VfioLab.Preload.Tests;

/// <summary>One finished child process: its exit code and what it printed.</summary>
internal sealed record ProcessRun(int ExitCode, string Stdout, string Stderr)
{
    public string Both => Stdout + Stderr;

    /// <summary>Runs a program to its end (killing it after <paramref name="timeout"/>, which fails the test).</summary>
    public static ProcessRun Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null,
        TimeSpan? timeout = null, string? workingDirectory = null)
    {
        using var process = new Process { StartInfo = Info(file, args, env, workingDirectory) };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {limit}:\n{stdout}{stderr}");
        }

        process.WaitForExit();
        return new ProcessRun(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static ProcessStartInfo Info(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env,
        string? workingDirectory)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in env ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        return info;
    }
}
