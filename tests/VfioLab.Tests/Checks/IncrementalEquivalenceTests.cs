using VfioLab.Scenarios;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Checks;

/// <summary>
/// Issue 16's "the same violations found", over the scenarios of the repository: every built-in scenario and every
/// conformance scenario is run twice on the model, once as <c>vfiolab run</c> runs it (the incremental check after each
/// step, the full sweep after the last) and once with the full sweep after every step, and each step must report the
/// same: its violations and hazards by invariant name, its problems, its outcome. The seeded random sequences with
/// injected corruptions are in <see cref="InvariantCheckerIncrementalTests"/>.
/// </summary>
public sealed class IncrementalEquivalenceTests
{
    public static TheoryData<string> BuiltIns() => [.. BuiltInScenarios.Names];

    public static TheoryData<string> ConformanceFiles() =>
        [.. Directory.GetFiles(Path.Combine(ConformanceProgram.FindRepositoryRoot(), "conformance", "scenarios"), "*.yaml").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(BuiltIns))]
    public void BuiltInScenario_IncrementalReportsWhatTheFullSweepReports_StepByStep(string name) =>
        AssertSameReports(() => BuiltInScenarios.Load(name));

    [Theory]
    [MemberData(nameof(ConformanceFiles))]
    public void ConformanceScenario_IncrementalReportsWhatTheFullSweepReports_StepByStep(string file) =>
        AssertSameReports(() => ScenarioDocument.Load(Path.Combine(ConformanceProgram.FindRepositoryRoot(), "conformance", "scenarios", file)));

    [Fact]
    public void TheScenarioSetsAreThere()
    {
        // A missing directory must fail loudly, not make the theories above run zero cases.
        Assert.True(ConformanceFiles().Count >= 40);
        Assert.True(BuiltIns().Count >= 5);
    }

    [Fact]
    public void AScenarioOfMapSteps_IsCheckedIncrementally()
    {
        // The comparison above is worth something only if the incremental check runs: a scenario of map_dma steps
        // checks them narrowly (one full sweep after the last step).
        PreparedScenario run = ScenarioRunner.Prepare(ScenarioDocument.Parse(MapSteps(40), "map-steps.yaml"), new RunOptions { CheckInvariants = true });
        Assert.True(run.Execute().Passed);
        Assert.True(run.Host.Checker.IncrementalChecks >= 39, $"{run.Host.Checker.IncrementalChecks} incremental check(s)");
    }

    private static void AssertSameReports(Func<ScenarioDocument> load)
    {
        PreparedScenario incremental = ScenarioRunner.Prepare(load(), new RunOptions { CheckInvariants = true });
        PreparedScenario full = ScenarioRunner.Prepare(load(), new RunOptions { CheckInvariants = true });
        full.Host.Checker.SweepAlways = true;
        ScenarioOutcome a = incremental.Execute();
        ScenarioOutcome b = full.Execute();
        Assert.Equal(0, full.Host.Checker.IncrementalChecks);
        Assert.Equal(b.Steps.Count, a.Steps.Count);
        for (int i = 0; i < a.Steps.Count; i++)
        {
            StepReport x = a.Steps[i];
            StepReport y = b.Steps[i];
            string where = $"step {i} ({y.Location} {y.Description})";
            Assert.True(Names(y.Violations).SequenceEqual(Names(x.Violations)),
                $"{where}: full sweep [{string.Join(", ", Names(y.Violations))}], incremental [{string.Join(", ", Names(x.Violations))}]");
            Assert.True(Names(y.Hazards).SequenceEqual(Names(x.Hazards)), $"{where}: hazards differ");
            Assert.Equal(y.Problems.Count, x.Problems.Count);
            Assert.Equal(y.Outcome, x.Outcome);
        }
        Assert.Equal(b.UnexpectedViolations, a.UnexpectedViolations);
        Assert.Equal(b.Passed, a.Passed);
    }

    private static string[] Names(IReadOnlyList<StepViolation> found) => [.. found.Select(v => v.Invariant).Order(StringComparer.Ordinal)];

    private static string MapSteps(int steps)
    {
        var text = new System.Text.StringBuilder("""
            vfiolab: 1
            name: map-steps
            host:
              memory: 64MiB
              iommu: vt-d
            devices:
              - { name: gpu, address: "0000:01:00.0", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 16MiB } ] }
            processes:
              - { name: qemu, memlock: unlimited }
            steps:
              - mmap: { size: 1MiB, populate: true, as: ram }
              - open: { path: /dev/vfio/vfio, as: container }
              - open: { path: /dev/vfio/1, as: group }
              - group_set_container: { fd: group, container: container }
              - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }

            """);
        for (int i = 0; i < steps; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: container, iova: {0x1_0000_0000UL + ((ulong)i * 4096)}, vaddr: ram+{i * 4096}, size: 4096, flags: [READ, WRITE] }}\n");
        }
        return text.ToString();
    }
}
