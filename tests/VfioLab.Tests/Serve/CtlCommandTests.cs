using VfioLab.Abi;
using VfioLab.Cli;
using VfioLab.Cli.Commands.Ctl;

namespace VfioLab.Tests.Serve;

/// <summary><c>vfiolab ctl</c> against a running server while this test process is its client.</summary>
public sealed class CtlCommandTests
{
    private static (int Exit, string Out, string Error) Ctl(ServeFixture f, params string[] words)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int exit = new CtlCommand(new CliConsole(o, e)).Execute(f.Server.SocketPath, words);
        return (exit, o.ToString(), e.ToString());
    }

    [Fact]
    public void Ctl_StatusDmaCheckSizingAndUnplug_WhileAClientRuns()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        {
            using var ram = new NativeBuffer(1UL << 20);
            using (NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0x100000, 1UL << 20))
            {
                Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
            }
            (int exit, string text, _) = Ctl(f, "status");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains($"(real pid {Environment.ProcessId})", text, StringComparison.Ordinal);
            Assert.Contains("iova 0x100000 size 0x100000", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "dma", "nic", "write", "0x100010", "deadbeef");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains("ok, 4 byte(s) in a client's memory", text, StringComparison.Ordinal);
            Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, ram.Read(0x10, 4));

            ram.Write(0x20, [1, 2, 3]);
            (exit, text, _) = Ctl(f, "dma", "nic", "read", "0x100020", "3");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.StartsWith("010203\n", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "dma", "nic", "read", "0x900000", "3");
            Assert.Equal(ExitCodes.ScenarioFailed, exit);
            Assert.Contains("fault at 0x900000", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "check");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains("invariants: no violation", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "sizing");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains("1 DMA mapping(s), 1048576 bytes mapped", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "reset", "nic");
            Assert.Equal(ExitCodes.ScenarioFailed, exit);
            Assert.Contains("no client has nic open", text, StringComparison.Ordinal);

            (exit, text, _) = Ctl(f, "unplug", "nic");
            Assert.True(exit == ExitCodes.Success, text);
            Assert.False(Directory.Exists(Path.Combine(f.Server.RootPath, "sys/bus/pci/devices/0000:02:00.0")));
        }
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("dma", "nic", "read", "zz", "4")]
    [InlineData("dma", "nic", "write", "0x1000", "nothex")]
    [InlineData("reset")]
    public void Ctl_MalformedRequest_Exits2AndSendsNothing(params string[] words)
    {
        using var f = new ServeFixture();
        string before = f.Host.Digest();
        (int exit, _, string error) = Ctl(f, words);
        Assert.Equal(ExitCodes.UsageOrInputError, exit);
        Assert.StartsWith("vfiolab ctl: ", error, StringComparison.Ordinal);
        Assert.Equal(before, f.Host.Digest());
    }

    [Fact]
    public void Ctl_UnknownDevice_IsEnodevWithTheReason()
    {
        using var f = new ServeFixture();
        (int exit, string text, _) = Ctl(f, "unplug", "gpu");
        Assert.Equal(ExitCodes.ScenarioFailed, exit);
        Assert.Contains("gpu", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Ctl_RecordSave_WritesARecordingServersFileAndFailsOnOneThatDoesNotRecord()
    {
        using (var recording = new ServeFixture(ServeRecordTests.HostYaml))
        {
            (int exit, string text, _) = Ctl(recording, "record-save");
            Assert.Equal(ExitCodes.Success, exit);
            Assert.Contains($"recorded 0 step(s) to {recording.RecordPath}", text, StringComparison.Ordinal);
            Assert.True(File.Exists(recording.RecordPath));
        }
        using var f = new ServeFixture();
        (int notRecording, string reason, _) = Ctl(f, "record-save");
        Assert.Equal(ExitCodes.ScenarioFailed, notRecording);
        Assert.Contains("not recording", reason, StringComparison.Ordinal);
    }
}
