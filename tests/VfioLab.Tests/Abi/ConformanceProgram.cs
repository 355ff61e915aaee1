using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace VfioLab.Tests.Abi;

/// <summary>
/// Builds and runs conformance/vfio_abi_dump.c against the system's linux/vfio.h and returns its facts, keyed
/// "sizeof struct", "offsetof struct field", "ioctl MACRO", "const MACRO". Missing prerequisites fail the test
/// with the fix; they never skip it.
/// </summary>
internal static class ConformanceProgram
{
    internal const string SourceRelativePath = "tests/VfioLab.Tests/Abi/conformance/vfio_abi_dump.c";
    private const string InstallHint = "Run .ci/install-prereqs.sh (installs gcc, libc6-dev and linux-libc-dev) and retry.";
    private static readonly TimeSpan ProcessLimit = TimeSpan.FromMinutes(2);

    internal static Dictionary<string, ulong> Run()
    {
        string source = Path.Combine(FindRepositoryRoot(), SourceRelativePath);
        Assert.True(File.Exists(source), $"conformance program not found at {source}");
        string dir = Directory.CreateTempSubdirectory("vfiolab-abi-").FullName;
        try
        {
            string exe = Path.Combine(dir, "vfio_abi_dump");
            (int ccExit, string _, string ccErr) = Execute("cc", ["-std=gnu11", "-Wall", "-Werror", "-o", exe, source]);
            if (ccExit != 0)
            {
                string cause = ccErr.Contains("vfio.h", StringComparison.Ordinal) || ccErr.Contains("stdio.h", StringComparison.Ordinal)
                    ? "a system header is missing"
                    : "the C program did not compile";
                Assert.Fail($"{cause}: cc exited {ccExit}. {InstallHint}\n{ccErr}");
            }
            (int exit, string output, string err) = Execute(exe, []);
            Assert.True(exit == 0, $"{exe} exited {exit}: {err}");
            return Parse(output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    internal static Dictionary<string, ulong> Parse(string output)
    {
        var facts = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int lastSpace = line.LastIndexOf(' ');
            Assert.True(lastSpace > 0, $"unparsable line from the C program: '{line}'");
            string key = line[..lastSpace];
            ulong value = ulong.Parse(line[(lastSpace + 1)..], NumberStyles.None, CultureInfo.InvariantCulture);
            Assert.True(facts.TryAdd(key, value), $"the C program printed '{key}' twice");
        }
        return facts;
    }

    internal static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VfioLab.slnx")))
            {
                return dir.FullName;
            }
        }
        Assert.Fail($"no VfioLab.slnx above {AppContext.BaseDirectory}");
        return "";
    }

    private static (int Exit, string Out, string Err) Execute(string file, string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        }
        catch (Win32Exception e)
        {
            Assert.Fail($"cannot run '{file}' ({e.Message}): the C compiler 'cc' is required. {InstallHint}");
            throw;
        }
        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(ProcessLimit))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{file} did not finish within {ProcessLimit}");
            }
            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
