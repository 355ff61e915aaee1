namespace VfioLab.Scenarios;

/// <summary>How a scenario runs (<see cref="ScenarioRunner"/>).</summary>
public sealed record RunOptions
{
    /// <summary>Run the model's invariant checker after every step and report what breaks unannounced (on by
    /// default; <c>vfiolab run --no-check</c> turns it off).</summary>
    public bool CheckInvariants { get; init; } = true;

    /// <summary>Sample the host after every step and return a <see cref="SizingReport"/> (peaks of
    /// <c>locked_vm</c>, DMA mappings, IOPTEs and page-table memory) with the outcome (<c>vfiolab run --report</c>).</summary>
    public bool Sizing { get; init; }
}
