using System.Text.Json;
using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>Why a call was refused, where <c>vfiolab run</c> shows it: in the problem of a failed step, on a
/// <c>why:</c> line for an expected error with <c>--verbose</c> only, as <c>refusal</c> in <c>--json</c> and as
/// <c>refused_by</c>/<c>reason</c> on the failed call's <c>syscall</c> trace event.</summary>
public sealed class RunRefusalTests : IDisposable
{
    private const string MsiWindow = """
        vfiolab: 1
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: nic, address: "0000:02:00.0", group: 1 }
        processes:
          - { name: qemu, memlock: 1GiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/1, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - mmap: { size: 2MiB, as: ram }
          - map_dma: { fd: c, iova: 0xfee00000, vaddr: ram, size: 2MiB, expect: EXPECTED }
        """;

    private const string Why = "[0xfee00000, 0xfeffffff] overlaps the msi reserved region [0xfee00000, 0xfeefffff] of group 1 (vfio_iommu_iova_dma_valid)";

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Run_StepFailingWithAnErrno_SaysWhichCheckRefusedIt()
    {
        string path = _dir.Write("msi.yaml", MsiWindow.Replace("EXPECTED", "ok", StringComparison.Ordinal));

        (int code, string output, _) = Cli.Run("run", path);

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        Assert.Contains("expected success, got EINVAL: " + Why, output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ExpectedErrno_SaysWhyOnlyWithVerbose()
    {
        string path = _dir.Write("msi.yaml", MsiWindow.Replace("EXPECTED", "EINVAL", StringComparison.Ordinal));

        (int quietCode, string plain, _) = Cli.Run("run", path);
        (int code, string verbose, _) = Cli.Run("run", "--verbose", path);

        Assert.Equal((ExitCodes.Success, ExitCodes.Success), (quietCode, code));
        Assert.DoesNotContain("why:", plain, StringComparison.Ordinal);
        Assert.Contains("why: EINVAL: " + Why, verbose, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_VerboseWithQuiet_IsACommandLineError()
    {
        (int code, _, string err) = Cli.Run("run", "--verbose", "--quiet");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("--quiet and --verbose", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Json_CarriesTheRefusalOfEachFailedStep()
    {
        string path = _dir.Write("msi.yaml", MsiWindow.Replace("EXPECTED", "EINVAL", StringComparison.Ordinal));

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.Success, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement steps = doc.RootElement.GetProperty("scenarios")[0].GetProperty("steps");
        Assert.Equal(JsonValueKind.Null, steps[0].GetProperty("refusal").ValueKind);
        JsonElement refusal = steps[5].GetProperty("refusal");
        Assert.Equal("EINVAL", refusal.GetProperty("errno").GetString());
        Assert.Equal("vfio_iommu_iova_dma_valid", refusal.GetProperty("check").GetString());
        Assert.StartsWith("[0xfee00000, 0xfeffffff] overlaps", refusal.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, refusal.GetProperty("source").ValueKind);
        Assert.Equal("EINVAL: " + Why, refusal.GetProperty("text").GetString());
    }

    [Fact]
    public void Run_Trace_FailedSyscallCarriesRefusedByAndReason()
    {
        string path = _dir.Write("msi.yaml", MsiWindow.Replace("EXPECTED", "EINVAL", StringComparison.Ordinal));
        string trace = Path.Combine(_dir.Path, "t.jsonl");

        (int code, _, _) = Cli.Run("run", "--trace", trace, path);

        Assert.Equal(ExitCodes.Success, code);
        List<JsonDocument> events = [.. File.ReadAllLines(trace).Select(l => SchemaFiles.AssertValid(SchemaFiles.TraceEvent, l))];
        JsonElement failed = Assert.Single(events.Select(e => e.RootElement),
            e => e.GetProperty("kind").GetString() == "syscall" && e.TryGetProperty("errno", out _));
        Assert.Equal("vfio_iommu_iova_dma_valid", failed.GetProperty("refused_by").GetString());
        Assert.Contains("overlaps the msi reserved region", failed.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.All(events.Select(e => e.RootElement).Where(e => !e.TryGetProperty("errno", out _)), e => Assert.False(e.TryGetProperty("refused_by", out _)));
        events.ForEach(e => e.Dispose());
    }
}
