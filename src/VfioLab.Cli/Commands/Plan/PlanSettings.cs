namespace VfioLab.Cli.Commands.Plan;

/// <summary>What <c>vfiolab plan</c> was asked to do: a VM description file and/or the options that describe or
/// override it, the limits to judge, and the output.</summary>
internal sealed record PlanSettings
{
    public string? File { get; init; }

    public string? Machine { get; init; }

    public string? Memory { get; init; }

    public string? Backing { get; init; }

    public IReadOnlyList<string> Devices { get; init; } = [];

    public IReadOnlyList<string> Mdevs { get; init; } = [];

    public bool VIommu { get; init; }

    public string? VirtioMem { get; init; }

    public string? HostIommu { get; init; }

    public string? HostPageSize { get; init; }

    public string? Kernel { get; init; }

    public string? Memlock { get; init; }

    public string? DmaEntryLimit { get; init; }

    public bool Json { get; init; }

    public bool EmitScenario { get; init; }

    public string? HtmlPath { get; init; }
}
