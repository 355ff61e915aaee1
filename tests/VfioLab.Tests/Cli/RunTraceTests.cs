using System.Text.Json;
using VfioLab.Cli;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab run --trace</c>: every line valid against docs/schemas/trace-event.schema.json (no key twice,
/// one value convention); every system call of a simulated process — failed ones with their errno — is one event
/// carrying the step and FILE:LINE:COL that made it; <c>--trace -</c> writes to standard output.</summary>
public sealed class RunTraceTests : IDisposable
{
    private const string Calls = """
        vfiolab: 1
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 16MiB } ] }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - check_extension: { fd: c, extension: VFIO_TYPE1v2_IOMMU, expect: { result: 1 } }
          - open: { path: /dev/vfio/1, as: g }
          - group_get_status: { fd: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - iommu_get_info: { fd: c }
          - get_device_fd: { fd: g, name: "0000:01:00.0", as: d }
          - device_get_info: { fd: d }
          - mmap: { size: 2MiB, as: ram }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 1MiB }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 1MiB, expect: EEXIST }
          - close: { fd: 77, expect: EBADF }
          - open: { path: /dev/vfio/7, expect: ENOENT }
          - munmap: { vaddr: ram, size: 2MiB }
          - close: { fd: d }
        """;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<JsonDocument> ValidLines(string text)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        return [.. lines.Select(l => SchemaFiles.AssertValid(SchemaFiles.TraceEvent, l))];
    }

    private static IEnumerable<JsonElement> Syscalls(IEnumerable<JsonDocument> events, string call) =>
        events.Select(e => e.RootElement).Where(e => e.GetProperty("kind").GetString() == "syscall" && e.GetProperty("call").GetString() == call);

    [Fact]
    public void Run_TraceToStdout_WritesOnlyTraceLinesOnStdoutAndTheReportOnStderr()
    {
        (int code, string output, string err) = Cli.Run("run", "--trace", "-", "arm-64k");

        Assert.Equal(ExitCodes.Success, code);
        Assert.False(File.Exists("-"));
        Assert.All(ValidLines(output), d => d.Dispose());
        Assert.Contains("scenario arm-64k:", err, StringComparison.Ordinal);
        Assert.Contains("PASSED", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Trace_EverySystemCallIsOneEventCarryingItsStep()
    {
        string path = _dir.Write("calls.yaml", Calls);
        string trace = Path.Combine(_dir.Path, "t.jsonl");

        (int code, string output, _) = Cli.Run("run", "--trace", trace, path);

        Assert.True(code == ExitCodes.Success, output);
        List<JsonDocument> events = ValidLines(File.ReadAllText(trace));
        JsonElement[] syscalls = [.. events.Select(e => e.RootElement).Where(e => e.GetProperty("kind").GetString() == "syscall")];
        string[] lines = Calls.Split('\n');
        foreach (JsonElement call in syscalls)
        {
            int step = call.GetProperty("step").GetInt32();
            int line = int.Parse(call.GetProperty("at").GetString()!.Split(':')[^2], System.Globalization.CultureInfo.InvariantCulture);
            Assert.StartsWith($"{path}:", call.GetProperty("at").GetString(), StringComparison.Ordinal);
            Assert.Equal(step + 5, line);
            Assert.Contains(lines[line - 1].Trim()[2..].Split(':')[0], new[] { "open", "close", "check_extension", "group_get_status", "group_set_container",
                "set_iommu", "iommu_get_info", "get_device_fd", "device_get_info", "mmap", "map_dma", "munmap" });
        }

        JsonElement check = Assert.Single(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString() == "VFIO_CHECK_EXTENSION");
        Assert.Equal((1, "0x3", 1L), (check.GetProperty("step").GetInt32(), check.GetProperty("arg").GetString(), check.GetProperty("result").GetInt64()));
        Assert.Equal("/dev/vfio/vfio", check.GetProperty("path").GetString());
        Assert.Single(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString() == "VFIO_GROUP_GET_STATUS");
        Assert.Single(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString() == "VFIO_GROUP_SET_CONTAINER");
        Assert.Single(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString() == "VFIO_GROUP_GET_DEVICE_FD");
        Assert.Single(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString() == "VFIO_DEVICE_GET_INFO");
        Assert.Contains(Syscalls(events, "ioctl"), e => e.GetProperty("request").GetString()!.Contains("VFIO_IOMMU_GET_INFO", StringComparison.Ordinal));

        JsonElement eexist = Assert.Single(Syscalls(events, "ioctl"), e => e.TryGetProperty("errno", out JsonElement x) && x.GetString() == "EEXIST");
        Assert.Equal((11, "VFIO_IOMMU_MAP_DMA", -17L), (eexist.GetProperty("step").GetInt32(), eexist.GetProperty("request").GetString(), eexist.GetProperty("result").GetInt64()));
        JsonElement badClose = Assert.Single(Syscalls(events, "close"), e => e.GetProperty("fd").GetInt32() == 77);
        Assert.Equal(("EBADF", 12), (badClose.GetProperty("errno").GetString(), badClose.GetProperty("step").GetInt32()));
        Assert.False(badClose.TryGetProperty("path", out _));
        JsonElement noGroup = Assert.Single(Syscalls(events, "open"), e => e.GetProperty("path").GetString() == "/dev/vfio/7");
        Assert.Equal("ENOENT", noGroup.GetProperty("errno").GetString());
        Assert.Equal(3, Syscalls(events, "open").Count());
        JsonElement mmap = Assert.Single(Syscalls(events, "mmap"));
        Assert.Equal(("0x200000", 9), (mmap.GetProperty("length").GetString(), mmap.GetProperty("step").GetInt32()));
        Assert.Single(Syscalls(events, "munmap"));
        JsonElement vma = Assert.Single(events.Select(e => e.RootElement), e => e.GetProperty("kind").GetString() == "mmap");
        Assert.Equal("Anonymous", vma.GetProperty("vma").GetString());
        events.ForEach(e => e.Dispose());
    }

    [Fact]
    public void Run_TraceOfEveryBuiltIn_IsValidAgainstTheSchema()
    {
        string trace = Path.Combine(_dir.Path, "all.jsonl");

        (int code, _, _) = Cli.Run(["run", "-q", "--trace", trace, .. BuiltInScenarios.Names], terminal: false, noColor: false);

        Assert.Equal(ExitCodes.Success, code);
        List<JsonDocument> events = ValidLines(File.ReadAllText(trace));
        Assert.All(events, e => Assert.True(e.RootElement.TryGetProperty("step", out _), e.RootElement.GetRawText()));
        Assert.Contains(events, e => e.RootElement.GetProperty("kind").GetString() == "syscall" && e.RootElement.GetProperty("call").GetString() == "fork");
        Assert.Contains(events, e => e.RootElement.GetProperty("kind").GetString() == "syscall" && e.RootElement.GetProperty("call").GetString() == "exit");
        Assert.Contains(events, e => e.RootElement.GetProperty("kind").GetString() == "syscall" && e.RootElement.GetProperty("call").GetString() == "pwrite");
        Assert.Contains(events, e => e.RootElement.GetProperty("kind").GetString() == "syscall" && e.RootElement.GetProperty("call").GetString() == "write_memory");
        events.ForEach(e => e.Dispose());
    }

    [Fact]
    public void Run_TraceToAPathThatCannotBeWritten_ExitsTwoAndRunsNothing()
    {
        string trace = Path.Combine(_dir.Path, "missing", "t.jsonl");

        (int code, string output, string err) = Cli.Run("run", "--trace", trace);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Contains($"cannot write '{trace}'", err, StringComparison.Ordinal);
    }
}
