using System.Text.Json;
using VfioLab.Cli;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab run --json</c>: one JSON document on standard output, valid against
/// docs/schemas/run-output.schema.json, with every step's location, call, expectation, outcome, errno and result
/// fields, the violations and the summaries — and, when input is malformed, the errors and nothing run.</summary>
public sealed class RunJsonTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Run_JsonOfTheDefault_IsOneDocumentValidAgainstTheSchema()
    {
        (int code, string output, string err) = Cli.Run("run", "--json");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Empty(err);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement root = doc.RootElement;
        Assert.Equal(0, root.GetProperty("exit_code").GetInt32());
        Assert.Equal(35, root.GetProperty("summary").GetProperty("steps").GetInt32());
        JsonElement scenario = Assert.Single(root.GetProperty("scenarios").EnumerateArray());
        Assert.Equal(BuiltInScenarios.DefaultName, scenario.GetProperty("name").GetString());
        JsonElement first = scenario.GetProperty("steps")[0];
        Assert.Equal(0, first.GetProperty("index").GetInt32());
        Assert.Equal("open", first.GetProperty("kind").GetString());
        Assert.StartsWith("open path=/dev/vfio/vfio", first.GetProperty("call").GetString(), StringComparison.Ordinal);
        Assert.Equal($"{first.GetProperty("file").GetString()}:{first.GetProperty("line").GetInt32()}:{first.GetProperty("column").GetInt32()}",
            first.GetProperty("at").GetString());
        Assert.Equal("passed", first.GetProperty("outcome").GetString());
    }

    [Fact]
    public void Run_JsonOfEveryBuiltIn_IsValidAgainstTheSchema()
    {
        (int code, string output, _) = Cli.Run(["run", "--json", "--report", .. BuiltInScenarios.Names], terminal: false, noColor: false);

        Assert.Equal(ExitCodes.Success, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        Assert.Equal(BuiltInScenarios.Names.Count, doc.RootElement.GetProperty("scenarios").GetArrayLength());
        Assert.All(doc.RootElement.GetProperty("scenarios").EnumerateArray(), s => Assert.NotEqual(0, s.GetProperty("sizing").GetArrayLength()));
    }

    [Fact]
    public void Run_JsonOfAFailingStep_CarriesTheExpectationErrnoAndProblem()
    {
        string path = _dir.Write("f.yaml", """
            vfiolab: 1
            steps:
              - open: { path: /dev/vfio/vfio, as: c }
              - ioctl: { fd: c, request: VFIO_CHECK_EXTENSION, value: 3, expect: { result: 0 } }
              - close: { fd: 99, expect: ok }
            """);

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement steps = doc.RootElement.GetProperty("scenarios")[0].GetProperty("steps");
        JsonElement check = steps[1];
        Assert.Equal("failed", check.GetProperty("outcome").GetString());
        Assert.Equal("{ result }", check.GetProperty("expect").GetString());
        Assert.Equal(1, check.GetProperty("result").GetProperty("result").GetInt64());
        Assert.Equal(JsonValueKind.Null, check.GetProperty("errno").ValueKind);
        JsonElement close = steps[2];
        Assert.Equal("EBADF", close.GetProperty("errno").GetString());
        Assert.Equal(-9, close.GetProperty("result").GetProperty("result").GetInt64());
        Assert.Contains("expected success, got EBADF", close.GetProperty("problems")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(5, close.GetProperty("line").GetInt32());
        JsonElement summary = doc.RootElement.GetProperty("summary");
        Assert.Equal((3, 1, 2), (summary.GetProperty("steps").GetInt32(), summary.GetProperty("steps_passed").GetInt32(), summary.GetProperty("steps_failed").GetInt32()));
        Assert.False(doc.RootElement.GetProperty("passed").GetBoolean());
    }

    [Fact]
    public void Run_JsonOfAnUnexpectedViolation_ListsIt()
    {
        string path = _dir.Write("v.yaml", BuiltInScenarios.GetText("quirk-pfnmap-vm-pgoff")
            .Replace("- expect_violation: { invariant: translation-backed }", "# not announced", StringComparison.Ordinal));

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement violation = doc.RootElement.GetProperty("scenarios")[0].GetProperty("violations")[0];
        Assert.Equal("translation-backed", violation.GetProperty("invariant").GetString());
        Assert.Equal(doc.RootElement.GetProperty("scenarios")[0].GetProperty("violations").GetArrayLength(),
            doc.RootElement.GetProperty("summary").GetProperty("unexpected_violations").GetInt32());
        JsonElement step = doc.RootElement.GetProperty("scenarios")[0].GetProperty("steps")[violation.GetProperty("step").GetInt32()];
        Assert.Equal("map_dma", step.GetProperty("kind").GetString());
        Assert.Equal("failed", step.GetProperty("outcome").GetString());
    }

    [Fact]
    public void Run_JsonOfAHazard_ListsItApartFromViolations()
    {
        string path = _dir.Write("remap.yaml", VfioLab.Tests.Checks.RemappedUnderDmaHazardTests.Remap);

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.Success, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement scenario = doc.RootElement.GetProperty("scenarios")[0];
        Assert.Equal(0, scenario.GetProperty("violations").GetArrayLength());
        JsonElement hazard = Assert.Single(scenario.GetProperty("hazards").EnumerateArray());
        Assert.Equal("vpfn-consistent", hazard.GetProperty("invariant").GetString());
        Assert.Equal(11, hazard.GetProperty("step").GetInt32());
        Assert.Contains("Linux allows it", hazard.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("pin_pages", scenario.GetProperty("steps")[11].GetProperty("kind").GetString());
    }

    [Fact]
    public void Run_JsonOfAMalformedFile_ListsTheErrorAndRunsNothing()
    {
        string path = _dir.Write("m.yaml", "vfiolab: 1\nsteps:\n  - map_dma: { fd: 3, iova: 0, vaddr: 0, size: 1, flags: [RAED] }\n");

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        Assert.Equal(2, doc.RootElement.GetProperty("exit_code").GetInt32());
        Assert.Equal(0, doc.RootElement.GetProperty("scenarios").GetArrayLength());
        JsonElement error = Assert.Single(doc.RootElement.GetProperty("errors").EnumerateArray());
        Assert.Equal((path, 3), (error.GetProperty("file").GetString(), error.GetProperty("line").GetInt32()));
        Assert.Contains("unknown flag 'RAED'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Run_JsonResultFields_FollowTheValueConvention()
    {
        string path = _dir.Write("r.yaml", """
            vfiolab: 1
            devices:
              - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 16MiB } ] }
            steps:
              - open: { path: /dev/vfio/vfio, as: c }
              - open: { path: /dev/vfio/1, as: g }
              - group_set_container: { fd: g, container: c }
              - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
              - get_device_fd: { fd: g, name: "0000:01:00.0", as: d }
              - device_get_region_info: { fd: d, index: 0 }
              - iommu_get_info: { fd: c }
            """);

        (int code, string output, _) = Cli.Run("run", "--json", path);

        Assert.Equal(ExitCodes.Success, code);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.RunOutput, output);
        JsonElement steps = doc.RootElement.GetProperty("scenarios")[0].GetProperty("steps");
        JsonElement region = steps[5].GetProperty("result");
        Assert.Equal("0x1000000", region.GetProperty("size").GetString());
        Assert.StartsWith("0x", region.GetProperty("flags").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("0x", region.GetProperty("offset").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, region.GetProperty("index").GetInt32());
        Assert.Equal(JsonValueKind.Number, steps[4].GetProperty("result").GetProperty("fd").ValueKind);
        Assert.StartsWith("0x", steps[6].GetProperty("result").GetProperty("iova_pgsizes").GetString(), StringComparison.Ordinal);
    }
}
