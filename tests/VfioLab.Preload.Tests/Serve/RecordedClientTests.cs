using VfioLab.Scenarios;

namespace VfioLab.Preload.Tests;

/// <summary>
/// <c>vfiolab serve --record</c> with the example clients (examples/clients/), unmodified, under libvfiolab-preload.so:
/// the recorded scenario runs on the model with every step meeting what the client got (each step's <c>expect</c> is
/// the model's answer to the real call), and <c>vfiolab run</c> passes it; a recording with one answer changed does
/// not, so the replay checks the answers.
/// </summary>
public sealed class RecordedClientTests
{
    private const string Device = "0000:00:10.0";

    public static TheoryData<string, string> Clients() => new()
    {
        // What each recording must state: the edu's vendor and device ids read from config space (34 12 e8 11); the
        // second MAP_DMA of a chunk; GET_BITMAP before START, and every pinned page dirty in the bitmap read back.
        { "kernel-doc-flow", "data: 3412e811" },
        { "dpdk-style-v1", "expect: EEXIST" },
        { "dirty-tracking", "expect: { data: ffffffffffffffff }" },
    };

    [Theory]
    [MemberData(nameof(Clients))]
    public void Client_RecordedUnderThePreload_ReplaysEveryStepWithTheSameResults(string client, string stated)
    {
        NativeBuild.Ensure();
        string dir = Directory.CreateTempSubdirectory("vfiolab-record-").FullName;
        try
        {
            string record = Path.Combine(dir, client + ".yaml");
            using var server = ServeProcess.Start(Path.Combine(RepoPaths.Clients, "edu-host.yaml"), "--record", record);
            var run = ProcessRun.Start(Path.Combine(RepoPaths.Build, "clients", client), [Device], new Dictionary<string, string?>
            {
                ["LD_PRELOAD"] = RepoPaths.Preload,
                ["VFIOLAB_SOCKET"] = server.Socket,
                ["VFIOLAB_TIMEOUT_MS"] = "60000",
            });
            var (exit, report) = server.Stop();
            string context = $"\n--- client ---\n{run.Both}--- server ---\n{report}";
            Assert.True(run.ExitCode == 0 && exit == 0, $"{client} exited {run.ExitCode}, the server {exit}{context}");
            Assert.Contains($"to {record}; replay with: vfiolab run {record}", report, StringComparison.Ordinal);
            string text = File.ReadAllText(record);
            Assert.Contains(stated, text, StringComparison.Ordinal);

            AssertReplays(record, context);
            var cli = ProcessRun.Start(Path.Combine(AppContext.BaseDirectory, "VfioLab.Cli"), ["run", record],
                new Dictionary<string, string?> { ["LD_PRELOAD"] = null, ["VFIOLAB_SOCKET"] = null, ["NO_COLOR"] = "1" }, TimeSpan.FromSeconds(120));
            Assert.True(cli.ExitCode == 0, $"vfiolab run {record} exited {cli.ExitCode}:\n{cli.Both}");

            // One answer changed (the first bytes an ioctl wrote back): the replay finds it.
            int at = text.IndexOf("bytes: ", StringComparison.Ordinal) + "bytes: ".Length;
            Assert.True(at > "bytes: ".Length, $"no ioctl wrote bytes back in the recording:\n{text}");
            string changed = Path.Combine(dir, "changed.yaml");
            File.WriteAllText(changed, string.Concat(text.AsSpan(0, at), text[at] == 'f' ? "0" : "f", text.AsSpan(at + 1)));
            ScenarioOutcome outcome = ScenarioRunner.Prepare(ScenarioDocument.Load(changed)).Execute();
            StepReport failed = Assert.Single(outcome.Steps, s => !s.Passed);
            Assert.Equal("ioctl", failed.Kind);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Every step of the recording meets its expectation on the model, and no invariant breaks.</summary>
    internal static void AssertReplays(string record, string context)
    {
        ScenarioOutcome outcome = ScenarioRunner.Prepare(ScenarioDocument.Load(record)).Execute();
        string failed = string.Join('\n', outcome.Steps.Where(s => !s.Passed).Select(s => $"{s.Location} {s.Kind}: {s.Outcome} {string.Join("; ", s.Problems)}"));
        Assert.True(outcome.Passed, $"the recording does not replay:\n{failed}\n--- recording ---\n{File.ReadAllText(record)}{context}");
        Assert.True(outcome.StepsRun > 10, $"only {outcome.StepsRun} step(s) recorded{context}");
    }
}
