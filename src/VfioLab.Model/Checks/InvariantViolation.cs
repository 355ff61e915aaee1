namespace VfioLab.Checks;

/// <summary>A broken invariant: its fixed name (SCENARIOS.md) and what exactly is wrong.</summary>
internal sealed record InvariantViolation(string Invariant, string Message);
