using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Tests.Scenarios.Running;

public sealed class ScenarioRunnerTests
{
    private const string Header = """
        vfiolab: 1
        name: t
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: p }
        steps:

        """;

    private static (ScenarioOutcome Outcome, CollectingReporter Reporter) Run(string steps, bool check = true)
    {
        ScenarioDocument doc = ScenarioParser.Parse(Header + steps, "t.yaml");
        var reporter = new CollectingReporter();
        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions { CheckInvariants = check }, reporter, null);
        return (outcome, reporter);
    }

    [Theory]
    [MemberData(nameof(BuiltIns))]
    public void Run_BuiltInScenario_Passes(string name)
    {
        ScenarioDocument doc = ScenarioParser.Parse(BuiltInScenarios.GetText(name), BuiltInScenarios.PathOf(name));
        var reporter = new CollectingReporter();

        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions(), reporter, null);

        Assert.True(outcome.Passed, string.Join("\n", reporter.Steps.Where(s => !s.Passed).SelectMany(s => s.Problems)));
        Assert.Equal(doc.Steps.Count, outcome.StepsRun);
    }

    public static TheoryData<string> BuiltIns() => [.. BuiltInScenarios.Names];

    [Fact]
    public void Run_DefaultScenario_IsListedFirst()
    {
        Assert.Equal(BuiltInScenarios.DefaultName, BuiltInScenarios.Names[0]);
    }

    [Fact]
    public void Run_WrongErrnoExpected_FailsThatStepOnly()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - open: { path: /dev/vfio/vfio, as: c }
              - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU, expect: ENODEV }
              - get_api_version: { fd: c }
            """);

        Assert.False(outcome.Passed);
        Assert.True(r.Steps[0].Passed);
        Assert.False(r.Steps[1].Passed);
        Assert.Contains("expected ENODEV, got EINVAL", r.Steps[1].Problems[0]);
        Assert.True(r.Steps[2].Passed);
    }

    [Fact]
    public void Run_FieldExpectationMismatch_ReportsTheField()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - open: { path: /dev/vfio/1, as: g }
              - group_get_status: { fd: g, expect: { viable: false } }
            """);

        Assert.False(outcome.Passed);
        Assert.Contains(r.Steps[1].Problems, p => p.Contains("viable", StringComparison.Ordinal));
    }

    [Fact]
    public void Run_ExpectSuccessButErrno_ReportsErrnoName()
    {
        (_, CollectingReporter r) = Run("""
              - open: { path: /dev/vfio/99 }
            """);

        Assert.Contains("ENOENT", r.Steps[0].Problems[0]);
    }

    [Fact]
    public void Run_SpaprStepOnBadFd_FailsWithTheErrnoAndRunsOn()
    {
        // sPAPR steps run now (they used to be refused as not modelled); on an fd that is not open: EBADF.
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - spapr_tce_remove: { fd: 9, start: 0 }
              - open: { path: /dev/vfio/vfio }
            """);

        Assert.False(outcome.Passed);
        Assert.Contains("EBADF", r.Steps[0].Problems[0]);
        Assert.True(r.Steps[1].Passed);
    }

    [Fact]
    public void Run_ReadThroughBarWhileDecodeOff_IsSigbusAndInvariantsHold()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - mmap: { size: 4KiB, as: buf }
              - write: { vaddr: buf, data: "01 02 03 04" }
              - read: { vaddr: buf, size: 4, expect: { data: "01020304" } }
              - read: { vaddr: 0x1000, size: 4, expect: EFAULT }
            """);

        Assert.True(outcome.Passed, string.Join("\n", r.Steps.SelectMany(s => s.Problems)));
    }

    [Fact]
    public void Run_ExpectViolationWithoutViolation_FailsThatStep()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - open: { path: /dev/vfio/vfio }
              - expect_violation: { invariant: pins-balanced }
            """);

        Assert.False(outcome.Passed);
        Assert.Contains("pins-balanced", r.Steps[1].Problems[0]);
    }

    [Fact]
    public void Run_TraceWriter_GetsOneJsonObjectPerLine()
    {
        ScenarioDocument doc = ScenarioParser.Parse(Header + """
              - mmap: { size: 8KiB, populate: true }
              - open: { path: /dev/vfio/vfio }
            """, "t.yaml");
        var trace = new StringWriter();

        ScenarioRunner.Run(doc, new RunOptions(), new CollectingReporter(), trace);

        string[] lines = trace.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.All(lines, l => System.Text.Json.JsonDocument.Parse(l).Dispose());
        Assert.Contains(lines, l => l.Contains("\"kind\":\"mmap\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_HostThatCannotBeBuilt_IsALocatedError()
    {
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse("""
            vfiolab: 1
            devices:
              - { name: a, address: "0000:01:00.0", group: 5, bars: [ { index: 0, size: 1MiB } ] }
              - { name: b, address: "0000:02:00.0", group: 5, iommu: smmu-v3, bars: [ { index: 0, size: 1MiB } ] }
            steps: []
            """, "dup.yaml"));

        Assert.Equal((4, 48), (e.Line, e.Column));
        Assert.Equal("devices of IOMMU group 5 sit behind different IOMMUs ('a' and 'b')", e.Reason);
    }

    [Fact]
    public void Parse_UnknownQuirk_IsAParseErrorAtTheName()
    {
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse("""
            vfiolab: 1
            host:
              quirks: [subpage-iommu-pages, not-a-quirk]
            steps: []
            """, "quirk.yaml"));

        Assert.Equal(3, e.Line);
        Assert.Equal(33, e.Column);
        Assert.Contains("unknown value 'not-a-quirk'", e.Message);
    }

    [Fact]
    public void Run_EveryQuirkOfScenariosMd_IsModelledAndBuilds()
    {
        ScenarioDocument doc = ScenarioParser.Parse($"""
            vfiolab: 1
            host:
              quirks: [{string.Join(", ", VfioLab.Lab.KernelQuirks.All)}]
            steps: []
            """, "quirks.yaml");

        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions(), new CollectingReporter(), null);

        Assert.True(outcome.Passed);
        Assert.Equal(VfioLab.Lab.KernelQuirks.All, doc.Host.Quirks);
    }

    [Fact]
    public void Run_QuirkNotModelled_IsRefusedBeforeAnyStep()
    {
        // Only an in-process caller can name a quirk the parser does not know; the host factory still refuses
        // anything outside KernelQuirks.All rather than run today's behaviour under its name.
        ScenarioDocument parsed = ScenarioParser.Parse("""
            vfiolab: 1
            steps:
              - open: { path: /dev/vfio/vfio }
            """, "quirk.yaml");
        ScenarioDocument doc = WithHost(parsed, parsed.Host with { Quirks = ["future-quirk"] });
        var reporter = new CollectingReporter();

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioRunner.Run(doc, new RunOptions(), reporter, null));

        Assert.Contains("'future-quirk'", e.Message);
        Assert.Contains("does not model", e.Message);
        Assert.Empty(reporter.Steps);
    }

    [Fact]
    public void Run_HostTheBuilderRefuses_IsAnErrorAtTheHost()
    {
        // The parser refuses memory that is not a multiple of the page size; an in-process caller reaches the
        // model's builder, whose refusal comes back located at the host.
        ScenarioDocument parsed = ScenarioParser.Parse("vfiolab: 1\nsteps: []\n", "memory.yaml");
        ScenarioDocument doc = WithHost(parsed, parsed.Host with { Memory = 0x12345 });

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioRunner.Run(doc, new RunOptions(), new CollectingReporter(), null));

        Assert.Equal((1, 1), (e.Line, e.Column));
        Assert.Contains("host memory 0x12345 is not a non-zero multiple of the page size 0x1000", e.Message);
    }

    /// <summary>The document with another host, as only an in-process caller can write it.</summary>
    private static ScenarioDocument WithHost(ScenarioDocument doc, HostSpec host) =>
        new(doc.Name, doc.Description, doc.File, host, doc.Devices, doc.Processes, doc.Steps);
}
