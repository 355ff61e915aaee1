using System.Text.Json;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>The scenario library as a caller outside the assembly uses it: a prepared scenario's host can be looked
/// at before and after its steps run, it runs once, a reporter implements only what it needs, a step's result fields
/// come out as JSON in the docs/schemas convention, and the built-ins are there by name.</summary>
public sealed class PreparedScenarioTests
{
    private const string MapTwoMegabytes = """
        vfiolab: 1
        devices:
          - { name: nic, address: "0000:02:00.0", group: 2 }
        processes:
          - { name: vmm, memlock: 64MiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: container }
          - open: { path: /dev/vfio/2, as: group }
          - group_set_container: { fd: group, container: container }
          - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
          - mmap: { size: 2MiB, as: ram }
          - map_dma: { fd: container, iova: 0x100000, vaddr: ram, size: 2MiB }
        """;

    private static PreparedScenario Prepare() => ScenarioRunner.Prepare(ScenarioDocument.Parse(MapTwoMegabytes, "map.yaml"));

    [Fact]
    public void Prepare_Scenario_BuildsTheHostAndRunsNothing()
    {
        PreparedScenario prepared = Prepare();
        LabProcess vmm = prepared.Host.Process("vmm");

        Assert.Equal(6, prepared.Document.StepCount);
        Assert.Equal(0UL, vmm.LockedVmBytes);
        Assert.Empty(prepared.Host.Containers);

        ScenarioOutcome outcome = prepared.Execute();

        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.SelectMany(s => s.Problems)));
        Assert.Equal(2UL << 20, vmm.LockedVmBytes);
        Assert.Equal(1UL, Assert.Single(prepared.Host.Containers).MappingCount);
    }

    [Fact]
    public void Execute_Twice_ThrowsInvalidOperationException()
    {
        PreparedScenario prepared = Prepare();
        prepared.Execute();

        Assert.Throws<InvalidOperationException>(() => prepared.Execute());
    }

    [Fact]
    public void Execute_ReporterImplementingOnlyStepFinished_SeesEveryStep()
    {
        var reporter = new StepCounter();

        ScenarioOutcome outcome = Prepare().Execute(reporter);

        Assert.Equal(outcome.StepsRun, reporter.Steps);
        Assert.Equal(6, reporter.Steps);
    }

    [Fact]
    public void WriteJson_MmapResult_WritesTheAddressInHexAndLeavesBindOut()
    {
        StepReport mmap = ScenarioRunner.Run(ScenarioDocument.Parse(MapTwoMegabytes, "map.yaml")).Steps[4];
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            mmap.Result!.WriteJson(writer);
        }

        JsonElement json = JsonDocument.Parse(stream.ToArray()).RootElement;

        Assert.True(mmap.Result.TryGet("address", out ResultValue? address));
        Assert.Equal($"0x{address.Unsigned:x}", json.GetProperty("address").GetString());
        Assert.True(mmap.Result.TryGet("bind", out _));
        Assert.False(json.TryGetProperty("bind", out _));
        Assert.Equal(new SourceLocation("map.yaml", 11, 5), mmap.Location);
    }

    [Fact]
    public void BuiltInScenarios_Default_LoadsByName()
    {
        ScenarioDocument doc = BuiltInScenarios.Load(BuiltInScenarios.DefaultName);

        Assert.Equal(BuiltInScenarios.DefaultName, doc.Name);
        Assert.Equal($"<built-in>/{BuiltInScenarios.DefaultName}.yaml", doc.File);
        Assert.Equal(doc.Description, BuiltInScenarios.DescriptionOf(BuiltInScenarios.DefaultName));
        Assert.True(ScenarioRunner.Run(doc).Passed);
    }

    [Fact]
    public void BuiltInScenarios_UnknownName_ThrowsArgumentException()
    {
        Assert.False(BuiltInScenarios.Exists("no-such-scenario"));
        Assert.Throws<ArgumentException>(() => BuiltInScenarios.GetText("no-such-scenario"));
        Assert.Throws<ArgumentException>(() => BuiltInScenarios.Load("../gpu-passthrough"));
    }

    private sealed class StepCounter : IScenarioReporter
    {
        public int Steps { get; private set; }

        public void StepFinished(StepReport report) => Steps++;
    }
}
