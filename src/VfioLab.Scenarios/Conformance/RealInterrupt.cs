namespace VfioLab.Scenarios.Conformance;

/// <summary>What a real device's interrupt did: whether the trigger eventfd VFIO was given for it was signalled, or why
/// the device cannot raise what the step asks (then the step is model-only).</summary>
/// <param name="Delivered">Whether the trigger eventfd was signalled (false when none was set).</param>
/// <param name="CannotReason">Null when the interrupt was raised; otherwise why this device cannot raise it.</param>
public sealed record RealInterrupt(bool Delivered, string? CannotReason)
{
    /// <summary>An interrupt this device cannot raise.</summary>
    public static RealInterrupt Cannot(string reason) => new(false, reason);
}
