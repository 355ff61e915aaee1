namespace VfioLab.Cli.Commands.Import;

/// <summary>The command line of <c>vfiolab import qemu-trace</c>, as typed (sizes and numbers still text).</summary>
internal sealed record ImportSettings
{
    public required string Log { get; init; }
    public required string Output { get; init; }
    public string? Name { get; init; }
    public string? Memory { get; init; }
    public string? PageSize { get; init; }
    public string? Iommu { get; init; }
    public string[] IommuPageSizes { get; init; } = [];
    public int? ApertureBits { get; init; }
    public string? Kernel { get; init; }
    public string? DmaEntryLimit { get; init; }
    public string? Memlock { get; init; }
    public string? Device { get; init; }
    public int? Group { get; init; }
}
