namespace VfioLab.Scenarios.Running;

/// <summary>An invariant found broken after a step that no <c>expect_violation</c> announced: the invariant's name
/// (InvariantNames) and the checker's message.</summary>
internal sealed record StepViolation(string Invariant, string Message);
