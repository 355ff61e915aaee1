using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>Input that cannot run as written — a step the parser must refuse, or a host the model cannot build from a
/// well-formed file — is exit 2 with <c>FILE:LINE:COLUMN: reason</c> on standard error before any step runs, never
/// an internal error (exit 70).</summary>
public sealed class RunMalformedInputTests : IDisposable
{
    private const string Gpu = """
        vfiolab: 1
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: vmm }
        steps:
          - open: { path: /dev/vfio/vfio, as: container }
          - open: { path: /dev/vfio/1, as: group }
          - group_set_container: { fd: group, container: container }
          - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: group, name: "0000:01:00.0", as: device }

        """;

    private const string TwoIommusInOneGroup = """
        vfiolab: 1
        devices:
          - { name: a, address: "0000:01:00.0", group: 5, bars: [ { index: 0, size: 1MiB } ] }
          - { name: b, address: "0000:02:00.0", group: 5, iommu: smmu-v3, bars: [ { index: 0, size: 1MiB } ] }
        steps:
          - open: { path: /dev/vfio/vfio }

        """;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Run_MmapRegionWithoutSize_ExitsTwoAtTheStepAndRunsNothing()
    {
        string path = _dir.Write("bar.yaml", Gpu + "  - mmap_region: { device_fd: device, index: 0 }\n");

        (int code, string output, string err) = Cli.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith($"{path}:12:18: mmap_region: missing required field 'size'", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  - check: { process: vmm, pinned_pages: 0 }", 14, "process")]
    [InlineData("  - check: { as: c, pinned_pages: 0 }", 14, "as")]
    [InlineData("  - check: { expect: ok, invariants: clean }", 14, "expect")]
    [InlineData("  - check: { mappings: { fd: container, count: 0 }, expect: ok }", 53, "expect")]
    public void Run_CheckWithACommonField_ExitsTwoAtTheFieldAndRunsNothing(string step, int column, string field)
    {
        string path = _dir.Write("check.yaml", Gpu + step + "\n");

        (int code, string output, string err) = Cli.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith($"{path}:12:{column}: check: '{field}' does not apply to a check", err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_GroupBehindTwoIommus_ExitsTwoAtTheGroupAndRunsNothing()
    {
        string path = _dir.Write("host.yaml", TwoIommusInOneGroup);

        (int code, string output, string err) = Cli.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Equal($"{path}:4:48: devices of IOMMU group 5 sit behind different IOMMUs ('a' and 'b')", err.TrimEnd());
    }

    [Fact]
    public void Run_GroupBehindTwoIommusWithJson_ReportsTheLocatedError()
    {
        string path = _dir.Write("host.yaml", TwoIommusInOneGroup);

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        System.Text.Json.JsonElement error = Assert.Single(doc.RootElement.GetProperty("errors").EnumerateArray().ToList());
        Assert.Equal((4, 48), (error.GetProperty("line").GetInt32(), error.GetProperty("column").GetInt32()));
        Assert.Empty(doc.RootElement.GetProperty("scenarios").EnumerateArray());
    }

    [Fact]
    public void Probe_GroupBehindTwoIommus_ExitsTwoAtTheGroup()
    {
        string path = _dir.Write("host.yaml", TwoIommusInOneGroup);

        (int code, string output, string err) = Cli.Run("probe", "--scenario", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Equal($"{path}:4:48: devices of IOMMU group 5 sit behind different IOMMUs ('a' and 'b')", err.TrimEnd());
    }
}
