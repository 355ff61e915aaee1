namespace VfioLab.Scenarios;

/// <summary>An invariant found broken after a step that no <c>expect_violation</c> announced.</summary>
/// <param name="Invariant">The invariant's name (<see cref="Lab.InvariantNames"/>).</param>
/// <param name="Message">What the checker found, with the objects and addresses involved.</param>
public sealed record StepViolation(string Invariant, string Message);
