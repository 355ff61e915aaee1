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
        var output = new StringWriter();
        var console = new CliConsole(TextWriter.Synchronized(output), TextWriter.Synchronized(new StringWriter()));
        using var stop = new CancellationTokenSource();
        int exit = -1;
        var thread = new Thread(() => exit = new ServeCommand(console).Execute(file, socket, tracePath: null, stop.Token));
        thread.Start();
        SpinWait.SpinUntil(() => File.Exists(socket), TimeSpan.FromSeconds(30));
        using (var client = new WireClient(socket))
        {
            Assert.Equal(0, client.Hello().Result);
            using var container = new WireClient(socket);
            Assert.Equal(0, container.Open("/dev/vfio/vfio").Result);
            Assert.Equal(1, container.Ioctl(VfioIoctl.CheckExtension, (ulong)VfioExtension.Type1v2Iommu).Result);
        }
        stop.Cancel();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(ExitCodes.Success, exit);
        string text = output.ToString();
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
}
