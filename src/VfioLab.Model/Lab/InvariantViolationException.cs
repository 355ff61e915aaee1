namespace VfioLab.Lab;

/// <summary>
/// Thrown from a system call of a <see cref="LabProcess"/> when the host checks invariants after every call
/// (<see cref="InvariantChecking.AfterEveryCall"/>) and the call left the model with a broken invariant. The call
/// itself has completed: its effects stay, so a test can inspect them.
/// </summary>
public sealed class InvariantViolationException : Exception
{
    /// <summary>Creates the exception for the violations found after <paramref name="call"/>.</summary>
    public InvariantViolationException(string call, IReadOnlyList<LabViolation> violations)
        : base($"after {call}: " + string.Join("; ", violations))
    {
        Call = call;
        Violations = violations;
    }

    /// <summary>The system call after which the check ran.</summary>
    public string Call { get; }

    /// <summary>The invariants found broken.</summary>
    public IReadOnlyList<LabViolation> Violations { get; }
}
