namespace VfioLab.Scenarios.Running;

/// <summary>How a scenario runs.</summary>
internal sealed record RunOptions
{
    /// <summary>Run the invariant checker after every step (<c>--check</c>; on by default).</summary>
    public bool CheckInvariants { get; init; } = true;
}
