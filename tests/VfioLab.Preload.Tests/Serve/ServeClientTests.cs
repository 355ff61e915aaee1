namespace VfioLab.Preload.Tests;

/// <summary>
/// The example clients (examples/clients/), unmodified, under libvfiolab-preload.so against <c>vfiolab serve</c> on
/// edu-host.yaml: each prints exactly what it prints on Linux 6.1 and 6.12 in the conformance rig
/// (examples/clients/expected/, written and checked there by compare-with-kernel.sh), and the server's report at
/// the end shows the model clean.
/// </summary>
public sealed class ServeClientTests
{
    private const string Device = "0000:00:10.0";

    public static TheoryData<string> Clients() => new() { "kernel-doc-flow", "dpdk-style-v1", "dirty-tracking" };

    [Theory]
    [MemberData(nameof(Clients))]
    public void Client_UnderThePreload_PrintsWhatLinuxPrintsAndLeavesTheModelClean(string client)
    {
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Path.Combine(RepoPaths.Clients, "edu-host.yaml"));
        var run = ProcessRun.Start(Path.Combine(RepoPaths.Build, "clients", client), [Device], new Dictionary<string, string?>
        {
            ["LD_PRELOAD"] = RepoPaths.Preload,
            ["VFIOLAB_SOCKET"] = server.Socket,
            ["VFIOLAB_TIMEOUT_MS"] = "60000",
        });
        var (exit, report) = server.Stop();
        var expected = File.ReadAllText(Path.Combine(RepoPaths.Clients, "expected", client + ".txt"));
        var actual = run.Stdout.Replace("\r\n", "\n", StringComparison.Ordinal) + $"exit {run.ExitCode}\n";
        Assert.True(expected == actual,
            $"{client} under the model differs from Linux.\n--- Linux (expected/{client}.txt) ---\n{expected}--- model ---\n{actual}"
            + $"--- stderr ---\n{run.Stderr}--- server ---\n{report}");
        Assert.True(exit == 0, $"vfiolab serve exited {exit} after {client}:\n{report}");
    }
}
