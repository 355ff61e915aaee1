namespace VfioLab.Scenarios;

/// <summary>The result of a whole run: every step's report, the invariant violations nothing announced, and the
/// sizing report when the run took one.</summary>
public sealed class ScenarioOutcome
{
    internal ScenarioOutcome(IReadOnlyList<StepReport> steps, int unexpectedViolations, SizingReport? sizing)
    {
        Steps = steps;
        UnexpectedViolations = unexpectedViolations;
        Sizing = sizing;
    }

    /// <summary>Every step that ran, in order.</summary>
    public IReadOnlyList<StepReport> Steps { get; }

    /// <summary>Invariant violations that no <c>expect_violation</c> announced (each also in its step's
    /// <see cref="StepReport.Violations"/>).</summary>
    public int UnexpectedViolations { get; }

    /// <summary>The sizing report, when <see cref="RunOptions.Sizing"/> asked for one; otherwise null.</summary>
    public SizingReport? Sizing { get; }

    /// <summary>Steps executed.</summary>
    public int StepsRun => Steps.Count;

    /// <summary>Steps that met their expectation.</summary>
    public int StepsPassed => Steps.Count(s => s.Passed);

    /// <summary>Every step met its expectation and no invariant broke unexpectedly.</summary>
    public bool Passed => StepsPassed == StepsRun && UnexpectedViolations == 0;
}
