using VfioLab.Scenarios;
using VfioLab.Scenarios.Import;

namespace VfioLab.Tests.Scenarios.Import;

/// <summary><c>QemuTrace.Parse</c>: every line form it reads (log backend with and without the
/// <c>PID@SECONDS:</c> prefix, <c>simpletrace.py</c>'s output, iommufd, error reports, old and new skip events), how
/// error reports attach to the traced call they answer, and the exact located message of each malformed form.</summary>
public sealed class QemuTraceParseTests
{
    private static QemuTraceEvent Single(string line)
    {
        QemuTrace trace = QemuTrace.Parse(line, "t.log");
        return Assert.Single(trace.Events);
    }

    private static string Refused(string text) => Assert.Throws<ScenarioParseException>(() => QemuTrace.Parse(text, "t.log")).Message;

    [Fact]
    public void Parse_RegionAddRamWithoutPrefix_IsAMapWithInclusiveEndAndVaddr()
    {
        QemuTraceEvent e = Single("vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0x7fffffff [0x7f2ff7ec0000]");

        Assert.Equal(QemuTraceEventKind.Map, e.Kind);
        Assert.Equal("vfio_listener_region_add_ram", e.Event);
        Assert.Equal(0xc0000UL, e.Iova);
        Assert.Equal(0x7ff40000UL, e.Size);
        Assert.Equal(0x7f2ff7ec0000UL, e.Vaddr);
        Assert.Equal(0, e.Result);
        Assert.Equal(new SourceLocation("t.log", 1, 1), e.Location);
    }

    [Fact]
    public void Parse_PidAtSecondsPrefix_IsPassedOverAndLocatesTheEventName()
    {
        QemuTraceEvent e = Single("38511@1618242847.843199:vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff [0x7fcbb4200000]");

        Assert.Equal((0xc0000UL, 0x20000UL, (ulong?)0x7fcbb4200000), (e.Iova, e.Size, e.Vaddr));
        Assert.Equal(25, e.Location.Column);
    }

    [Fact]
    public void Parse_RegionDel_IsAnUnmapWithoutVaddr()
    {
        QemuTraceEvent e = Single("vfio_listener_region_del region_del 0x100000 - 0x7fffffff");

        Assert.Equal((QemuTraceEventKind.Unmap, 0x100000UL, 0x7ff00000UL, (ulong?)null), (e.Kind, e.Iova, e.Size, e.Vaddr));
    }

    [Theory]
    [InlineData("38518@1618242860.968794:vfio_listener_region_del_skip SKIPPING region_del 0xfebf4400 - 0xfebf441f", 0xfebf4400UL, 0x20UL)]
    [InlineData("vfio_listener_region_add_skip SKIPPING region_add 0xfee00000 - 0xfeefffff", 0xfee00000UL, 0x100000UL)]
    [InlineData("vfio_listener_region_skip SKIPPING region_add 0xa0000 - 0xbffff", 0xa0000UL, 0x20000UL)]
    public void Parse_SkipLinesOldAndNew_AreSkips(string line, ulong start, ulong size)
    {
        QemuTraceEvent e = Single(line);

        Assert.Equal((QemuTraceEventKind.Skip, start, size), (e.Kind, e.Iova, e.Size));
    }

    [Fact]
    public void Parse_SimpleBackendOutput_ReadsArgumentsByName()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_add_ram 0.000 pid=4242 iova_start=0x100000000 iova_end=0x17fffffff vaddr=0x7f6a47e00000\n"
            + "vfio_listener_region_skip 12.250 pid=4242 name=region_del start=0xfee00000 end=0xfeefffff\n"
            + "vfio_listener_region_del 3.500 pid=4242 start=0x100000000 end=0x17fffffff\n",
            "t.log");

        Assert.Collection(trace.Events,
            e => Assert.Equal((QemuTraceEventKind.Map, 0x100000000UL, 0x80000000UL, (ulong?)0x7f6a47e00000), (e.Kind, e.Iova, e.Size, e.Vaddr)),
            e => Assert.Equal((QemuTraceEventKind.Skip, 0xfee00000UL), (e.Kind, e.Iova)),
            e => Assert.Equal((QemuTraceEventKind.Unmap, 0x100000000UL, 0x80000000UL), (e.Kind, e.Iova, e.Size)));
        Assert.Equal(3, trace.LineCount);
    }

    [Fact]
    public void Parse_SimpleBackendIommufdMap_ReadsTheSignExtendedReturnValue()
    {
        QemuTraceEvent e = Single("iommufd_backend_map_dma 1.125 pid=77 iommufd=0x5 ioas=0x2 iova=0xc0000 size=0x20000 vaddr=0x7fcbb4200000 readonly=0x0 ret=0xffffffffffffffef");

        Assert.Equal((QemuTraceEventKind.Map, 0xc0000UL, 0x20000UL, (ulong?)0x7fcbb4200000, -17), (e.Kind, e.Iova, e.Size, e.Vaddr, e.Result));
    }

    [Fact]
    public void Parse_IommufdLogLines_CarryTheirOwnResult()
    {
        QemuTrace trace = QemuTrace.Parse(
            "iommufd_backend_map_dma  iommufd=5 ioas=2 iova=0x0 size=0xa0000 addr=0x7fcaa7e00000 readonly=0 (0)\n"
            + "iommufd_backend_map_dma  iommufd=5 ioas=2 iova=0x0 size=0xa0000 addr=0x7fcaa7e00000 readonly=0 (-17)\n"
            + "iommufd_backend_unmap_dma  iommufd=5 ioas=2 iova=0x0 size=0xa0000 (0)\n"
            + "iommufd_backend_unmap_dma_non_exist  Unmap nonexistent mapping: iommufd=5 ioas=2 iova=0x0 size=0xa0000 (-2)\n",
            "t.log");

        Assert.Equal([0, -17, 0, -2], trace.Events.Select(e => e.Result));
        Assert.Equal([QemuTraceEventKind.Map, QemuTraceEventKind.Map, QemuTraceEventKind.Unmap, QemuTraceEventKind.Unmap], trace.Events.Select(e => e.Kind));
    }

    [Fact]
    public void Parse_AttachDevice_NamesTheDeviceAndItsGroup()
    {
        QemuTraceEvent e = Single("1234@1700000000.000001:vfio_attach_device  (0000:0b:00.0) group 17");

        Assert.Equal((QemuTraceEventKind.AttachDevice, "0000:0b:00.0", (int?)17), (e.Kind, e.Device, e.Group));
    }

    [Fact]
    public void Parse_ErrorReportAfterItsTracedAdd_GivesTheAddItsResult()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_add_ram region_add [ram] 0x100000000 - 0x27fffffff [0x7f6a47fff000]\n"
            + "qemu-system-x86_64: VFIO_MAP_DMA failed: Bad address\n"
            + "qemu-system-x86_64: vfio_dma_map(0x560a3b6ed880, 0x100000000, 0x180000000, 0x7f6a47fff000) = -14 (Bad address)\n",
            "t.log");

        QemuTraceEvent e = Assert.Single(trace.Events);
        Assert.Equal((-14, 1), (e.Result, e.Location.Line));
        Assert.Equal(1, trace.IgnoredLines);
    }

    [Fact]
    public void Parse_ErrorReportOfAnotherRange_StandsForItsOwnCall()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_add_ram region_add [ram] 0x0 - 0x9ffff [0x7fcaa7e00000]\n"
            + "kvm: vfio_container_dma_map(0x55da3da99aa0, 0x382800000000, 0x400000000, 0x7fb440000000) = -22 (Invalid argument)\n",
            "t.log");

        Assert.Collection(trace.Events,
            e => Assert.Equal(0, e.Result),
            e => Assert.Equal(("vfio_container_dma_map", 0x382800000000UL, 0x400000000UL, (ulong?)0x7fb440000000, -22, 6), (e.Event, e.Iova, e.Size, e.Vaddr, e.Result, e.Location.Column)));
    }

    [Fact]
    public void Parse_UnmapErrorReport_AnswersTheTracedDel()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_del region_del 0xc0000 - 0xdffff\n"
            + "vfio_dma_unmap(0x55d0, 0xc0000, 0x20000) = -22 (Invalid argument)\n",
            "t.log");

        Assert.Equal((QemuTraceEventKind.Unmap, -22), (Assert.Single(trace.Events).Kind, trace.Events[0].Result));
    }

    [Fact]
    public void Parse_NilVaddrAndUnrelatedLines_NoVaddrAndCounted()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_region_read  (0000:01:00.0:region0+0x0, 4) = 0x1\r\n"
            + "\n"
            + "vfio_listener_region_add_ram region_add [ram] 0x0 - 0xfff [(nil)]\r\n"
            + "a line about vfio_listener_region_add_ramblings\n",
            "t.log");

        Assert.Null(Assert.Single(trace.Events).Vaddr);
        Assert.Equal((4, 2), (trace.LineCount, trace.IgnoredLines));
    }

    [Theory]
    [InlineData("vfio_listener_region_add_ram region_add [ram] 0xc0000 - zz [0x7f00]",
        "t.log:1:57: expected iova_end as a 0x hex number, found 'zz'")]
    [InlineData("vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff 0x7f00",
        "t.log:1:65: expected '[' in vfio_listener_region_add_ram, found '0x7f00'")]
    [InlineData("vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff [0x7f00",
        "t.log:1:72: expected ']' in vfio_listener_region_add_ram, found the end of the line")]
    [InlineData("vfio_listener_region_del region_del 0xe0000 - 0xdffff",
        "t.log:1:47: vfio_listener_region_del: end 0xdffff is below start 0xe0000")]
    [InlineData("vfio_listener_region_del region_del 0x0 - 0xffffffffffffffff",
        "t.log:1:43: vfio_listener_region_del: [0x0, 0xffffffffffffffff] is 2^64 bytes, more than a size can say")]
    [InlineData("vfio_listener_region_del region_del 0x0 - 0x1fff trailing",
        "t.log:1:50: unexpected text after the arguments of vfio_listener_region_del: 'trailing'")]
    [InlineData("vfio_listener_region_del region_del 0x - 0x1fff",
        "t.log:1:39: expected hex digits after 0x in start, found ' '")]
    [InlineData("vfio_listener_region_del region_del 0x10000000000000000 - 0x1fff",
        "t.log:1:37: start 0x10000000000000000 does not fit in 64 bits")]
    [InlineData("vfio_dma_map(0x55d0, 0xc0000, 0x20000, 0x7f00) = EINVAL (Invalid argument)",
        "t.log:1:50: expected ret as a decimal number, found 'EINVAL'")]
    [InlineData("vfio_listener_region_add_ram 0.000 pid=1 iova_start=0xc0000 vaddr=0x7f00",
        "t.log:1:73: vfio_listener_region_add_ram has no argument 'iova_end'")]
    [InlineData("vfio_listener_region_del 0.000 pid=1 start=0xc0000 end=53",
        "t.log:1:56: expected end as a 0x hex number, found '53'")]
    [InlineData("vfio_listener_region_del 0.000 pid=1 start=0xc0000 stray end=0xdffff",
        "t.log:1:52: expected NAME=VALUE in the simple backend's form of vfio_listener_region_del, found 'stray'")]
    [InlineData("vfio_listener_region_del\tregion_del 0xc0000 -0xdffff",
        "t.log:1:46: expected a blank in vfio_listener_region_del, found '0xdffff'")]
    public void Parse_MalformedLine_RefusedAtItsColumn(string line, string message)
    {
        Assert.Equal(message, Refused(line));
    }

    [Fact]
    public void Parse_MalformedLineAfterGoodOnes_IsLocatedOnItsLine()
    {
        string message = Refused("vfio_listener_region_del region_del 0x0 - 0xfff\r\nnoise\nvfio_attach_device  (0000:01:00.0) group x\n");

        Assert.Equal("t.log:3:42: expected group_id as a decimal number, found 'x'", message);
    }

    [Fact]
    public void Parse_DmaMappingsWarningPastThirtyTwoBits_RefusedAtTheNumber()
    {
        Assert.Equal(
            "t.log:1:75: the DMA mappings QEMU reports, 4294967296, do not fit in dma_entry_limit (32 bits)",
            Refused("x: possibly running out of DMA mappings.  Maximum number of DMA mappings: 4294967296"));
    }

    [Fact]
    public void Load_MissingFile_IsLocatedAtLineOne()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-no-such-{Guid.NewGuid():N}.log");

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => QemuTrace.Load(path));

        Assert.StartsWith($"{path}:1:1: cannot read the trace: ", e.Message, StringComparison.Ordinal);
    }
}
