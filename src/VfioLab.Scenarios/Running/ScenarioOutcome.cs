namespace VfioLab.Scenarios.Running;

/// <summary>The result of a whole run.</summary>
internal sealed record ScenarioOutcome(IReadOnlyList<StepReport> Steps, int UnexpectedViolations, Reports.SizingReport? Sizing = null)
{
    /// <summary>Steps executed.</summary>
    public int StepsRun => Steps.Count;

    /// <summary>Steps that met their expectation.</summary>
    public int StepsPassed => Steps.Count(s => s.Passed);

    /// <summary>Every step met its expectation and no invariant broke unexpectedly.</summary>
    public bool Passed => StepsPassed == StepsRun && UnexpectedViolations == 0;
}
