namespace VfioLab.Scenarios.Running;

/// <summary>How a scenario runs.</summary>
internal sealed record RunOptions
{
    /// <summary>Run the invariant checker after every step (<c>--check</c>; on by default).</summary>
    public bool CheckInvariants { get; init; } = true;

    /// <summary>Sample the host after every step and return a <see cref="Reports.SizingReport"/> (peaks of
    /// <c>locked_vm</c>, DMA mappings, IOPTEs and page-table memory) with the outcome.</summary>
    public bool Sizing { get; init; }
}
