using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Serve;
using VfioLab.Tests.Cli;

namespace VfioLab.Tests.Serve;

/// <summary>A server on a temporary socket over a small host: one vfio-pci NIC (BAR0 1 MiB) in group 7.</summary>
internal sealed class ServeFixture : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly StringWriter _log = new();

    // The server's log writer: one synchronized wrapper of _log, whose writes lock the wrapper itself. Log reads _log
    // under that same lock, since tests poll it while the server's threads append (a StringBuilder read during an
    // append can throw).
    private readonly TextWriter _serverLog;

    public ServeFixture(LabHost? host = null)
    {
        _serverLog = TextWriter.Synchronized(_log);
        Host = host ?? new LabHostBuilder()
            .WithMemory(256UL << 20)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7))
            .Build();
        Server = ServeServer.Start(Host, Path.Combine(_dir.Path, "vfio.sock"), new ServeOptions { Log = _serverLog });
    }

    /// <summary>A server recording its clients (<c>serve --record</c>) to <see cref="RecordPath"/>, over the host of
    /// <paramref name="hostYaml"/> (a scenario file's text; its steps run first, as vfiolab serve runs them).</summary>
    public ServeFixture(string hostYaml)
    {
        _serverLog = TextWriter.Synchronized(_log);
        RecordPath = Path.Combine(_dir.Path, "recorded.yaml");
        VfioLab.Scenarios.PreparedScenario prepared = VfioLab.Scenarios.ScenarioRunner.Prepare(VfioLab.Scenarios.ScenarioDocument.Parse(hostYaml, "host.yaml"));
        if (prepared.Document.StepCount > 0)
        {
            Assert.True(prepared.Execute().Passed, "the host's own steps");
        }
        Host = prepared.Host;
        Server = ServeServer.Start(Host, Path.Combine(_dir.Path, "vfio.sock"), new ServeOptions
        {
            Log = _serverLog,
            RecordPath = RecordPath,
            RecordHostText = hostYaml,
            RecordHostFile = "host.yaml",
        });
    }

    /// <summary>Where a recording fixture's scenario is written.</summary>
    public string? RecordPath { get; }

    public string Directory => _dir.Path;

    public LabHost Host { get; }

    public ServeServer Server { get; }

    public string Log
    {
        get
        {
            lock (_serverLog)
            {
                return _log.ToString();
            }
        }
    }

    public WireClient Connect() => new(Server.SocketPath);

    /// <summary>A session connection that said HELLO.</summary>
    public WireClient Session()
    {
        WireClient c = Connect();
        Assert.Equal(0, c.Hello().Result);
        return c;
    }

    public WireClient OpenFile(string path)
    {
        WireClient c = Connect();
        WireClient.Answer a = c.Open(path);
        Assert.True(a.Result == 0, $"OPEN {path}: {a.Result}");
        return c;
    }

    /// <summary>Container and group 7 set up for type1v2, as the kernel documentation's example does.</summary>
    public (WireClient Container, WireClient Group) Type1Container()
    {
        WireClient container = OpenFile("/dev/vfio/vfio");
        WireClient group = OpenFile("/dev/vfio/7");
        using var fdArg = new NativeBuffer(4);
        fdArg.Write(0, BitConverter.GetBytes(container.Fd));
        Assert.Equal(0, group.Ioctl(VfioIoctl.GroupSetContainer, fdArg).Result);
        Assert.Equal(0, container.Ioctl(VfioIoctl.SetIommu, (ulong)VfioExtension.Type1v2Iommu).Result);
        return (container, group);
    }

    public WireClient DeviceFd(WireClient group, string name = "0000:02:00.0")
    {
        using var text = new NativeBuffer(64);
        text.Write(0, Encoding.ASCII.GetBytes(name + "\0"));
        WireClient.Answer a = group.Ioctl(VfioIoctl.GroupGetDeviceFd, text);
        Assert.True(a.Result >= 0, $"GET_DEVICE_FD: {a.Result}");
        Assert.Equal(Wire.ReplyNewFile, a.Flags);
        WireClient device = Connect();
        Assert.Equal(0, device.Attach(BinaryPrimitives.ReadUInt64LittleEndian(a.Payload)).Result);
        return device;
    }

    public static NativeBuffer MapDmaArg(ulong vaddr, ulong iova, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write)
    {
        var arg = new NativeBuffer(VfioIommuType1DmaMap.SizeOf);
        byte[] b = new byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(b);
        arg.Write(0, b);
        return arg;
    }

    public void Dispose()
    {
        Server.Dispose();
        _dir.Dispose();
    }
}
