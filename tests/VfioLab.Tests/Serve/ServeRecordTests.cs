using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Serve;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Serve;

/// <summary><c>vfiolab serve --record</c>: the calls a client made, written as a scenario that replays on the model
/// with every step meeting what the client got. The test process is the client (its own memory is mapped for DMA).</summary>
public sealed class ServeRecordTests
{
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code, which this test project does not allow.
    [DllImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static extern int EventFd(uint initial, int flags);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054

    internal const string HostYaml = """
        vfiolab: 1
        name: record-host
        # a comment the recording keeps
        host:
          memory: 256MiB
        devices:
          - name: nic
            address: "0000:02:00.0"
            group: 7
            bars: [ { index: 0, size: 1MiB } ]
            irqs: { intx: 1, msi: 1, msix: 4, msix_bar: 0 }
        steps:
          - mmap: { size: 2MiB, as: host_ram }
        """;

    private static ScenarioOutcome Replay(string path)
    {
        ScenarioDocument doc = ScenarioDocument.Load(path);
        return ScenarioRunner.Prepare(doc).Execute();
    }

    private static void AssertReplays(string path, string log)
    {
        ScenarioOutcome outcome = Replay(path);
        string failed = string.Join('\n', outcome.Steps.Where(s => !s.Passed).Select(s => $"{s.Location} {s.Kind}: {s.Outcome} {string.Join("; ", s.Problems)}"));
        Assert.True(outcome.Passed, $"the recording does not replay:\n{failed}\n--- recording ---\n{File.ReadAllText(path)}\n--- server ---\n{log}");
    }

    // Whether the recording's mmap steps map all of [address, address + size) (each at its client's address).
    private static bool MmapsCovering(string text, ulong address, ulong size)
    {
        var mapped = new List<(ulong Start, ulong End)>();
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text,
            @"- mmap: \{ process: client\d+, size: (?<size>[0-9a-fxKMGiB]+), backing: \w+(-\w+)?, prot: rw, at: 0x(?<at>[0-9a-f]+) \}"))
        {
            ulong start = ulong.Parse(m.Groups["at"].Value, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            mapped.Add((start, start + SizeOf(m.Groups["size"].Value)));
        }
        for (ulong at = address; at < address + size; at += 4096)
        {
            if (!mapped.Any(r => r.Start <= at && at < r.End))
            {
                return false;
            }
        }
        return true;
    }

    private static ulong SizeOf(string text) => text switch
    {
        _ when text.StartsWith("0x", StringComparison.Ordinal) => ulong.Parse(text.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture),
        _ when text.EndsWith("KiB", StringComparison.Ordinal) => ulong.Parse(text[..^3], System.Globalization.CultureInfo.InvariantCulture) << 10,
        _ when text.EndsWith("MiB", StringComparison.Ordinal) => ulong.Parse(text[..^3], System.Globalization.CultureInfo.InvariantCulture) << 20,
        _ when text.EndsWith("GiB", StringComparison.Ordinal) => ulong.Parse(text[..^3], System.Globalization.CultureInfo.InvariantCulture) << 30,
        _ => ulong.Parse(text, System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public void Record_TheDocumentationFlow_ReplaysEveryStepWithTheSameResults()
    {
        using var f = new ServeFixture(HostYaml);
        using var ram = new NativeBuffer(2UL << 20, 2UL << 20);
        int efd = EventFd(0, 0x800);
        Assert.True(efd >= 0);
        try
        {
            using WireClient session = f.Session();
            (WireClient container, WireClient group) = f.Type1Container();
            using (container)
            using (group)
            {
                Assert.Equal(1, container.Ioctl(VfioIoctl.CheckExtension, (ulong)VfioExtension.Type1v2Iommu).Result);
                using (NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0x100000, 2UL << 20))
                {
                    Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
                    Assert.Equal(-(long)Errno.EEXIST, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
                }
                using WireClient device = f.DeviceFd(group);
                using var config = new NativeBuffer(64);
                Assert.Equal(4, device.ReadWrite(Wire.Pread, config.Address, 4, VfioPci.IndexToOffset((uint)VfioPciRegionIndex.Config)).Result);

                using var set = new NativeBuffer(VfioIrqSet.SizeOf + 4);
                byte[] b = new byte[VfioIrqSet.SizeOf + 4];
                new VfioIrqSet { Argsz = (uint)b.Length, Flags = IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, Index = (uint)LabIrqIndex.Msix, Count = 1 }.Write(b);
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(VfioIrqSet.SizeOf), efd);
                set.Write(0, b);
                Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
                Assert.True(f.Server.RaiseInterrupt("nic", LabIrqIndex.Msix, 0));
                Assert.True(f.Server.DeviceWrite("nic", 0x100000, [1, 2, 3, 4]).Model.Ok);
            }
        }
        finally
        {
            Close(efd);
        }
        f.Server.Dispose();
        int steps = f.Server.SaveRecording();

        string text = File.ReadAllText(f.RecordPath!);
        Assert.True(steps > 10, text);
        // The host file as written (its comment and its own step kept), the client as a process of its own.
        Assert.Contains("# a comment the recording keeps", text, StringComparison.Ordinal);
        Assert.Contains("host_ram", text, StringComparison.Ordinal);
        Assert.Contains($"# real pid {Environment.ProcessId}", text, StringComparison.Ordinal);
        // Fds by name; the DMA memory recreated where the client had it, before the MAP_DMA naming it.
        Assert.Contains("group_set_container: { process: client1, fd: group7, container: container1 }", text, StringComparison.Ordinal);
        Assert.Contains("get_device_fd: { process: client1, fd: group7, name: \"0000:02:00.0\", as: device_0000_02_00_0 }", text, StringComparison.Ordinal);
        int mapDma = text.IndexOf("request: VFIO_IOMMU_MAP_DMA", StringComparison.Ordinal);
        Assert.True(MmapsCovering(text[..mapDma], ram.Address, 2UL << 20), $"no mmap before the MAP_DMA covers 0x{ram.Address:x}:\n{text}");
        Assert.Contains("expect: EEXIST", text, StringComparison.Ordinal);
        Assert.Contains("expect: { result: 1 }", text, StringComparison.Ordinal);
        // The eventfd passed to SET_IRQS, the interrupt and the device's DMA.
        Assert.Contains("- eventfd: { process: client1, as: eventfd1 }", text, StringComparison.Ordinal);
        Assert.Contains("eventfds: [eventfd1]", text, StringComparison.Ordinal);
        Assert.Contains("- device_interrupt: { device: nic, index: msix, vector: 0, expect: { delivered: true } }", text, StringComparison.Ordinal);
        Assert.Contains("- dma: { device: nic, op: write, iova: 0x100000, data: 01020304 }", text, StringComparison.Ordinal);
        AssertReplays(f.RecordPath!, f.Log);
    }

    [Fact]
    public void Record_WithoutTheMemoryItNames_DoesNotReplay()
    {
        // The recording's mmap is what lets its MAP_DMA pin: without it the replay fails there, so a passing replay
        // is the recording's doing.
        using var f = new ServeFixture(HostYaml);
        using var ram = new NativeBuffer(1UL << 20);
        using (WireClient session = f.Session())
        {
            (WireClient container, WireClient group) = f.Type1Container();
            using (container)
            using (group)
            using (NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0, 1UL << 20))
            {
                Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
            }
        }
        f.Server.Dispose();
        f.Server.SaveRecording();
        AssertReplays(f.RecordPath!, f.Log);

        string[] lines = File.ReadAllLines(f.RecordPath!);
        string cut = Path.Combine(f.Directory, "cut.yaml");
        Assert.True(MmapsCovering(string.Join('\n', lines), ram.Address, 1UL << 20));
        File.WriteAllLines(cut, lines.Where(l => !l.Contains("- mmap: { process: client1,", StringComparison.Ordinal)));
        ScenarioOutcome outcome = Replay(cut);
        StepReport failed = Assert.Single(outcome.Steps, s => !s.Passed);
        Assert.Equal("ioctl", failed.Kind);
        Assert.Equal("EFAULT", failed.Errno);
    }

    [Fact]
    public void Record_ClientDyingInsideARequest_LeavesAWellFormedFileThatReplays()
    {
        using var f = new ServeFixture(HostYaml);
        using (WireClient session = f.Session())
        using (WireClient container = f.OpenFile("/dev/vfio/vfio"))
        {
            Assert.Equal(VfioIoctl.ApiVersion, container.Ioctl(VfioIoctl.GetApiVersion, 0).Result);
            // A header announcing 16 bytes of IOCTL payload, 4 of them sent, and the connection gone.
            byte[] frame = new byte[Wire.HeaderSize + 4];
            Wire.WriteRequest(frame, Wire.Ioctl, 16, Environment.ProcessId, 9);
            container.Socket.Send(frame);
            container.Socket.Shutdown(SocketShutdown.Both);
            Assert.True(SpinWait.SpinUntil(() => f.Log.Contains("connection ended inside a request", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), f.Log);
        }
        f.Server.Dispose();
        f.Server.SaveRecording();
        string text = File.ReadAllText(f.RecordPath!);
        Assert.Contains("request: VFIO_GET_API_VERSION", text, StringComparison.Ordinal);
        Assert.Contains("close: { process: client1, fd: container1 }", text, StringComparison.Ordinal);
        AssertReplays(f.RecordPath!, f.Log);
    }

    [Fact]
    public void Record_AForkedClient_IsAForkStepOfItsParent()
    {
        using var f = new ServeFixture(HostYaml);
        string script = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "tests", "VfioLab.Tests", "Serve", "clients", "wire_client.py");
        using (Process client = Process.Start(new ProcessStartInfo("python3", [script, f.Server.SocketPath, "fork-child"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!)
        {
            string? child = client.StandardOutput.ReadLine();
            if (child is null || !child.StartsWith("child ", StringComparison.Ordinal))
            {
                Assert.Fail($"the client said '{child}': {client.StandardError.ReadToEnd()}");
            }
            Assert.StartsWith("parent ", client.StandardOutput.ReadLine(), StringComparison.Ordinal);
            client.StandardInput.WriteLine();
            Assert.True(client.WaitForExit(30_000));
        }
        Assert.True(SpinWait.SpinUntil(() => f.Log.Split('\n').Count(l => l.Contains("exited", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(30)), f.Log);
        f.Server.Dispose();
        f.Server.SaveRecording();
        string text = File.ReadAllText(f.RecordPath!);
        Assert.Contains("- fork: { process: client1, as: client2 }", text, StringComparison.Ordinal);
        Assert.Contains("request: VFIO_GET_API_VERSION", text, StringComparison.Ordinal);
        Assert.Contains("- exit: { process: client2 }", text, StringComparison.Ordinal);
        AssertReplays(f.RecordPath!, f.Log);
    }

    [Fact]
    public void RecordSave_OverTheControlSocket_WritesTheRecordingSoFar()
    {
        using var f = new ServeFixture(HostYaml);
        using WireClient session = f.Session();
        using WireClient container = f.OpenFile("/dev/vfio/vfio");
        KeyValuePair<long, byte[]> reply = ServeControl.Call(f.Server.SocketPath, ServeControl.RecordSave, []);
        Assert.Equal(0, reply.Key);
        Assert.Contains($"to {f.RecordPath}", Encoding.UTF8.GetString(reply.Value), StringComparison.Ordinal);
        string text = File.ReadAllText(f.RecordPath!);
        Assert.Contains("open: { process: client1, path: \"/dev/vfio/vfio\", as: container1 }", text, StringComparison.Ordinal);
        AssertReplays(f.RecordPath!, f.Log);
    }

    [Fact]
    public void RecordSave_ServerNotRecording_AnswersEinvalAndWritesNothing()
    {
        using var f = new ServeFixture();
        KeyValuePair<long, byte[]> reply = ServeControl.Call(f.Server.SocketPath, ServeControl.RecordSave, []);
        Assert.Equal(-(long)Errno.EINVAL, reply.Key);
        Assert.Contains("not recording", Encoding.UTF8.GetString(reply.Value), StringComparison.Ordinal);
        Assert.False(f.Server.IsRecording);
        Assert.Throws<InvalidOperationException>(() => f.Server.SaveRecording());
    }

    [Fact]
    public void Start_RecordWithoutTheHostText_IsRefused()
    {
        using var dir = new VfioLab.Tests.Cli.TempDirectory();
        LabHost host = new LabHostBuilder().WithMemory(64UL << 20).Build();
        Assert.Throws<ArgumentException>(() => ServeServer.Start(host, Path.Combine(dir.Path, "s.sock"),
            new ServeOptions { RecordPath = Path.Combine(dir.Path, "r.yaml") }));
        Assert.False(File.Exists(Path.Combine(dir.Path, "s.sock")));
    }
}
