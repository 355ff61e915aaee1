namespace VfioLab.Scenarios.Running;

/// <summary>What one step did: its description, what it returned, and every way it missed its expectation.</summary>
internal sealed record StepReport(int Index, string Location, string Kind, string Description, string Outcome, IReadOnlyList<string> Problems)
{
    /// <summary>Whether the step met its expectation and broke no invariant unexpectedly.</summary>
    public bool Passed => Problems.Count == 0;
}
