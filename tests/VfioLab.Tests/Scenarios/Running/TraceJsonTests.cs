using System.Text.Json;
using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>Trace lines: one value convention by field name (hex strings for addresses, sizes, offsets and flags;
/// numbers otherwise; errno names, none left out), the running step in the envelope, never a key twice.</summary>
public sealed class TraceJsonTests
{
    private static JsonElement Parse(string line) =>
        JsonDocument.Parse(line, new JsonDocumentOptions { AllowDuplicateProperties = false }).RootElement;

    [Fact]
    public void Format_Integers_AreHexByFieldNameAndNumbersOtherwise()
    {
        var ev = new LabTraceEvent(7, "x", 100,
        [
            TraceLog.F("iova", 0x1000UL), TraceLog.F("size", 512), TraceLog.F("pages", 0x200UL), TraceLog.F("flags", DmaMapFlags.Read | DmaMapFlags.Write),
            TraceLog.F("fd", 3), TraceLog.F("cap_offset", 0x10u), TraceLog.F("offset", -16L), TraceLog.F("request", VfioIoctl.IommuMapDma),
            TraceLog.F("write", true), TraceLog.F("what", "text"),
        ]);

        JsonElement e = Parse(TraceJson.Format(ev));

        Assert.Equal(("0x1000", "0x200", 512), (e.GetProperty("iova").GetString(), e.GetProperty("size").GetString(), e.GetProperty("pages").GetInt32()));
        Assert.Equal(("0x3", 3, "0x10"), (e.GetProperty("flags").GetString(), e.GetProperty("fd").GetInt32(), e.GetProperty("cap_offset").GetString()));
        Assert.Equal("-0x10", e.GetProperty("offset").GetString());
        Assert.Equal($"0x{VfioIoctl.IommuMapDma:x}", e.GetProperty("request").GetString());
        Assert.True(e.GetProperty("write").GetBoolean());
        Assert.Equal((7, "x", 100), (e.GetProperty("seq").GetInt32(), e.GetProperty("kind").GetString(), e.GetProperty("pid").GetInt32()));
    }

    [Fact]
    public void Format_ErrnoNone_IsLeftOutAndAnErrnoIsItsName()
    {
        JsonElement none = Parse(TraceJson.Format(new LabTraceEvent(1, "x", 0, [TraceLog.F("errno", "None"), TraceLog.F("e2", Errno.None)])));
        JsonElement some = Parse(TraceJson.Format(new LabTraceEvent(1, "x", 0, [TraceLog.F("errno", Errno.EINVAL)])));

        Assert.False(none.TryGetProperty("errno", out _));
        Assert.False(none.TryGetProperty("e2", out _));
        Assert.Equal("EINVAL", some.GetProperty("errno").GetString());
    }

    [Fact]
    public void Format_DuringAStep_CarriesItsIndexAndLocation()
    {
        JsonElement e = Parse(TraceJson.Format(new LabTraceEvent(1, "x", 0, []), new TraceStep(4, new SourceLocation("f.yaml", 12, 5))));

        Assert.Equal((4, "f.yaml:12:5"), (e.GetProperty("step").GetInt32(), e.GetProperty("at").GetString()));
    }

    [Theory]
    [InlineData("kind")]
    [InlineData("seq")]
    [InlineData("iova")]
    public void Format_AFieldNamedTwice_IsABug(string name) =>
        Assert.Throws<InvalidOperationException>(() => TraceJson.Format(new LabTraceEvent(1, "x", 0, [TraceLog.F("iova", 1UL), TraceLog.F(name, 2UL)])));

    [Fact]
    public void Run_Trace_EverySystemCallIsAnEventOfTheStepThatMadeIt()
    {
        ScenarioDocument doc = ScenarioParser.Parse("""
            vfiolab: 1
            steps:
              - open: { path: /dev/vfio/vfio, as: c }
              - check_extension: { fd: c, extension: VFIO_TYPE1v2_IOMMU, expect: { result: 1 } }
              - get_api_version: { fd: c }
              - mmap: { size: 8KiB, populate: true, as: m }
              - close: { fd: 42, expect: EBADF }
              - fork: { as: child }
              - exit: { process: child }
              - exit: { process: child, expect: ESRCH }
            """, "t.yaml");
        var trace = new StringWriter();

        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions(), new CollectingReporter(), trace);

        Assert.True(outcome.Passed);
        JsonElement[] calls = [.. trace.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Parse)
            .Where(e => e.GetProperty("kind").GetString() == "syscall")];
        Assert.Equal(["open", "ioctl", "ioctl", "mmap", "close", "fork", "exit", "exit"], calls.Select(c => c.GetProperty("call").GetString()));
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], calls.Select(c => c.GetProperty("step").GetInt32()));
        Assert.Equal([3, 4, 5, 6, 7, 8, 9, 10], calls.Select(c => int.Parse(c.GetProperty("at").GetString()!.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal("VFIO_CHECK_EXTENSION", calls[1].GetProperty("request").GetString());
        Assert.Equal("VFIO_GET_API_VERSION", calls[2].GetProperty("request").GetString());
        Assert.Equal(("EBADF", -9), (calls[4].GetProperty("errno").GetString(), calls[4].GetProperty("result").GetInt32()));
        Assert.Equal("ESRCH", calls[7].GetProperty("errno").GetString());
        Assert.False(calls[6].TryGetProperty("errno", out _));
    }
}
