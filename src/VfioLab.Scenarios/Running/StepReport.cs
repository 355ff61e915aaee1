using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>What one step did: where it is written, what it called and expected, what it returned, and every way it
/// missed its expectation (<see cref="Problems"/>; the unexpected invariant violations among them are also in
/// <see cref="Violations"/>).</summary>
/// <param name="Index">0-based position in <c>steps:</c>.</param>
/// <param name="Location"><c>FILE:LINE:COLUMN</c> of the step's kind.</param>
/// <param name="Kind">The step kind (<c>map_dma</c>).</param>
/// <param name="Description">The call as written: <c>[process] kind field=value ...</c>.</param>
/// <param name="Outcome">What it returned in one word: an errno, a summary, the result, or <c>ok</c>; empty when it could not run.</param>
/// <param name="Problems">Every mismatch and unexpected violation, each a sentence; empty when the step passed.</param>
internal sealed record StepReport(int Index, string Location, string Kind, string Description, string Outcome, IReadOnlyList<string> Problems)
{
    /// <summary>Whether the step met its expectation and broke no invariant unexpectedly.</summary>
    public bool Passed => Problems.Count == 0;

    /// <summary>Where the step is written (file, line, column), set by the runner.</summary>
    public SourceLocation? At { get; init; }

    /// <summary>The step's expectation as written (<c>ok</c>, <c>EINVAL</c>, <c>fault</c>, <c>{ size, errno }</c>), set by the runner.</summary>
    public string Expectation { get; init; } = "ok";

    /// <summary>The process it ran as, or null for the default one.</summary>
    public string? Process { get; init; }

    /// <summary>The fields the step returned (<c>result</c>, <c>errno</c>, <c>size</c>, ...), or null when it could not run.</summary>
    public StepResult? Result { get; init; }

    /// <summary>The errno the step's call failed with, or null when it succeeded or could not run.</summary>
    public string? Errno => Result is not null && Result.TryGet("errno", out ResultValue? e) && e is not null ? e.Text : null;

    /// <summary>Invariants found broken after this step that nothing announced.</summary>
    public IReadOnlyList<StepViolation> Violations { get; init; } = [];
}
