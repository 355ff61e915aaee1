namespace VfioLab.Lab;

/// <summary>One broken invariant of the model's state: its name (<see cref="InvariantNames"/>) and what was found.</summary>
/// <param name="Invariant">The invariant's name, as scenario files spell it.</param>
/// <param name="Message">What breaks it, with the objects and addresses involved.</param>
public sealed record LabViolation(string Invariant, string Message)
{
    /// <summary>For a hazard (<see cref="LabHost.CheckInvariants(out IReadOnlyList{LabViolation})"/>): why the state is the user's doing, not a broken
    /// model; null for a violation.</summary>
    public string? Hazard { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"{Invariant}: {Message}";
}
