namespace VfioLab.Scenarios;

/// <summary>What one step did: where it is written, what it called and expected, what it returned, and every way it
/// missed its expectation (<see cref="Problems"/>; the unexpected invariant violations among them are also in
/// <see cref="Violations"/>).</summary>
public sealed class StepReport
{
    internal StepReport(int index, SourceLocation location, string kind, string description, string outcome, IReadOnlyList<string> problems)
    {
        Index = index;
        Location = location;
        Kind = kind;
        Description = description;
        Outcome = outcome;
        Problems = problems;
    }

    /// <summary>0-based position in <c>steps:</c>.</summary>
    public int Index { get; }

    /// <summary>Where the step is written: the file, line and column of its kind.</summary>
    public SourceLocation Location { get; }

    /// <summary>The step kind (<c>map_dma</c>).</summary>
    public string Kind { get; }

    /// <summary>The call as written: <c>[process] kind field=value ...</c>.</summary>
    public string Description { get; }

    /// <summary>The process it ran as, or null for the default one.</summary>
    public string? Process { get; internal init; }

    /// <summary>The step's expectation as written (<c>ok</c>, <c>EINVAL</c>, <c>fault</c>, <c>{ size, errno }</c>).</summary>
    public string Expectation { get; internal init; } = "ok";

    /// <summary>What it returned in one word: an errno, a summary, the result, or <c>ok</c>; empty when it could not run.</summary>
    public string Outcome { get; }

    /// <summary>The fields the step returned, or null when it could not be carried out as written (an fd that is not
    /// a group, a name that bound nothing, a value out of range for its field).</summary>
    public StepResult? Result { get; internal init; }

    /// <summary>The errno the step's call failed with, or null when it succeeded or could not run.</summary>
    public string? Errno => Result is not null && Result.TryGet("errno", out ResultValue? e) ? e.Text : null;

    /// <summary>Why the step's call failed, when it failed on the model: the kernel check that refused it (its function
    /// as Linux names it), the values involved and, where it matters, the profile switch or commit; null when the step
    /// succeeded, ran on a real kernel, or no check explained its errno.</summary>
    public Lab.LabRefusal? Refusal { get; internal init; }

    /// <summary>Every mismatch and unexpected violation, each a sentence (most start with a location); empty when the
    /// step passed.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Invariants found broken after this step that nothing announced.</summary>
    public IReadOnlyList<StepViolation> Violations { get; internal init; } = [];

    /// <summary>Hazards the scenario created through calls Linux allows, found after the step (with invariant
    /// checking on): each names the invariant the state does not meet and why that is the user's doing. They do not
    /// fail the step.</summary>
    public IReadOnlyList<StepViolation> Hazards { get; internal init; } = [];
    /// <summary>Why the step did not run, when it ran on a real kernel that cannot answer it
    /// (<see cref="Conformance.ScenarioConformance.RunOnRealKernel"/>); null when it ran.</summary>
    public string? ModelOnly { get; internal init; }

    /// <summary>Whether the step met its expectation and broke no invariant unexpectedly.</summary>
    public bool Passed => Problems.Count == 0;

    /// <summary><c>FILE:LINE:COLUMN kind: outcome</c>, with the first problem when it failed.</summary>
    public override string ToString() =>
        $"{Location} {Description}{(Outcome.Length > 0 ? " -> " + Outcome : string.Empty)}{(Passed ? string.Empty : ": " + Problems[0])}";
}
