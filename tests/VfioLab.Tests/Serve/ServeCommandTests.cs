using VfioLab.Abi;
using VfioLab.Cli;
using VfioLab.Cli.Commands.Serve;
using VfioLab.Tests.Cli;

namespace VfioLab.Tests.Serve;

/// <summary><c>vfiolab serve</c>: a scenario's host served until stopped, with the state it ends in printed.</summary>
public sealed class ServeCommandTests
{
    private const string Host = """
        vfiolab: 1
        name: serve-host
        host: { memory: 256MiB }
        devices:
          - { name: nic, address: "0000:02:00.0", driver: vfio-pci, group: 7, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: vmm }
        steps:
          - mmap: { size: 2MiB, as: ram }
        """;

    [Fact]
    public void Serve_RunsStepsServesAClientAndPrintsTheState()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("host.yaml", Host);
        string socket = Path.Combine(dir.Path, "s.sock");
        string text = ServeOneClient(file, socket, record: null);
        Assert.Contains("serve-host: 1 step(s) ran first", text, StringComparison.Ordinal);
        Assert.Contains($"client pid {Environment.ProcessId}", text, StringComparison.Ordinal);
        Assert.Contains("process vmm: alive, locked_vm 0 bytes", text, StringComparison.Ordinal);
        Assert.Contains("invariants: no violation", text, StringComparison.Ordinal);
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public void Serve_MalformedHostFile_Exits2AndServesNothing()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("host.yaml", "vfiolab: 1\nname: x\nhost: { memory: lots }\n");
        var error = new StringWriter();
        var console = new CliConsole(new StringWriter(), error);
        int exit = new ServeCommand(console).Execute(file, Path.Combine(dir.Path, "s.sock"), tracePath: null, stop: null);
        Assert.Equal(ExitCodes.UsageOrInputError, exit);
        Assert.Contains("host.yaml:3:", error.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "s.sock")));
    }

    [Theory]
    [InlineData("missing-dir/recorded.yaml", "does not exist")]
    [InlineData(".", "is a directory")]
    public void Serve_RecordToAnUnwritablePath_Exits2BeforeServing(string record, string reason)
    {
        using var dir = new TempDirectory();
        string file = dir.Write("host.yaml", Host);
        var error = new StringWriter();
        var console = new CliConsole(new StringWriter(), error);
        int exit = new ServeCommand(console).Execute(file, Path.Combine(dir.Path, "s.sock"), tracePath: null, stop: null,
            recordPath: Path.Combine(dir.Path, record));
        Assert.Equal(ExitCodes.UsageOrInputError, exit);
        Assert.Contains("--record", error.ToString(), StringComparison.Ordinal);
        Assert.Contains(reason, error.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "s.sock")));
    }

    [Fact]
    public void Serve_WithRecord_WritesTheClientsCallsWhenStopped()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("host.yaml", Host);
        string socket = Path.Combine(dir.Path, "s.sock");
        string record = Path.Combine(dir.Path, "recorded.yaml");
        string text = ServeOneClient(file, socket, record);
        Assert.Contains($"to {record}; replay with: vfiolab run {record}", text, StringComparison.Ordinal);
        text = File.ReadAllText(record);
        // The host's declared process stays first, so its step still runs there; the client follows it.
        Assert.True(text.IndexOf("name: vmm", StringComparison.Ordinal) is int vmm && vmm > 0 && vmm < text.IndexOf("name: client1", StringComparison.Ordinal), text);
        Assert.Contains("request: VFIO_CHECK_EXTENSION, value: 0x3, expect: { result: 1 }", text, StringComparison.Ordinal);
        Assert.True(VfioLab.Scenarios.ScenarioRunner.Prepare(VfioLab.Scenarios.ScenarioDocument.Load(record)).Execute().Passed, text);
    }

    // Serves the host file on socket (recording into record when given) for one client that says hello, opens the
    // container and checks an extension, stops the server and returns what it printed.
    private static string ServeOneClient(string file, string socket, string? record)
    {
        var output = new StringWriter();
        var console = new CliConsole(TextWriter.Synchronized(output), TextWriter.Synchronized(new StringWriter()));
        using var stop = new CancellationTokenSource();
        int exit = -1;
        var thread = new Thread(() => exit = new ServeCommand(console).Execute(file, socket, tracePath: null, stop.Token, record));
        thread.Start();
        using (var client = WireClient.WhenListening(socket, TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(0, client.Hello().Result);
            using var container = new WireClient(socket);
            Assert.Equal(0, container.Open("/dev/vfio/vfio").Result);
            Assert.Equal(1, container.Ioctl(VfioIoctl.CheckExtension, (ulong)VfioExtension.Type1v2Iommu).Result);
        }
        stop.Cancel();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(ExitCodes.Success, exit);
        return output.ToString();
    }
}
