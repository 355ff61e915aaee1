using System.Text.RegularExpressions;
using VfioLab.Scenarios;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Scenarios.Refusals;

/// <summary>Every errno the scenarios of the repository drive (the built-ins and the conformance suite, 47 files written
/// to walk the kernel's errno paths step by step) comes with its reason: the kernel check that refused, as a function
/// name, and the values in words, for the very errno the step returned.</summary>
public sealed partial class RefusalCoverageTests
{
    public static TheoryData<string> BuiltIns() => [.. BuiltInScenarios.Names];

    public static TheoryData<string> ConformanceFiles() =>
        [.. Directory.GetFiles(Path.Combine(ConformanceProgram.FindRepositoryRoot(), "conformance", "scenarios"), "*.yaml").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(BuiltIns))]
    public void Run_BuiltIn_EveryErrnoHasItsReason(string name) =>
        AssertEveryErrnoExplained(ScenarioRunner.Prepare(BuiltInScenarios.Load(name)).Execute());

    [Theory]
    [MemberData(nameof(ConformanceFiles))]
    public void Run_ConformanceScenario_EveryErrnoHasItsReason(string file)
    {
        string path = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "conformance", "scenarios", file);
        AssertEveryErrnoExplained(ScenarioRunner.Prepare(ScenarioDocument.Load(path)).Execute());
    }

    [Fact]
    public void ConformanceFiles_AreThere()
    {
        // A missing directory must fail loudly, not make the theory above run zero cases.
        Assert.True(ConformanceFiles().Count >= 40);
    }

    internal static void AssertEveryErrnoExplained(ScenarioOutcome outcome)
    {
        var missing = new List<string>();
        foreach (StepReport step in outcome.Steps)
        {
            if (step.Errno is null || step.ModelOnly is not null)
            {
                Assert.Null(step.Refusal);
                continue;
            }
            if (step.Refusal is null)
            {
                missing.Add($"{step.Location} {step.Description} -> {step.Errno}: no reason");
                continue;
            }
            if (step.Refusal.Errno.ToString() != step.Errno || !CheckName().IsMatch(step.Refusal.Check) || step.Refusal.Reason.Length == 0)
            {
                missing.Add($"{step.Location} {step.Description} -> {step.Errno}: {step.Refusal}");
                continue;
            }
        }
        Assert.True(missing.Count == 0, string.Join('\n', missing));
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]*$")]
    private static partial Regex CheckName();
}
