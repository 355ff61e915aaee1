namespace VfioLab.Checks;

/// <summary>A broken invariant: its fixed name (SCENARIOS.md) and what exactly is wrong.</summary>
internal sealed record InvariantViolation(string Invariant, string Message)
{
    /// <summary>Why the state is one the user created through allowed calls (Linux allows it too), when it is:
    /// a reported hazard, not a broken model. Null: the model broke its invariant.</summary>
    public string? Hazard { get; init; }
}
