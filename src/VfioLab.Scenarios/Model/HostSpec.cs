namespace VfioLab.Scenarios.Model;

/// <summary>
/// The simulated machine of a scenario's <c>host:</c> section. Defaults when absent: 16 GiB of
/// memory, 4 KiB pages, a <c>vt-d</c> IOMMU with its own page sizes, aperture and reserved
/// regions, the <c>seeds</c> kernel, no quirks, the kernel's module parameters, contiguous frames.
/// <c>Kernel</c> is one of <see cref="Lab.KernelProfiles.All"/>, each of <c>Quirks</c> one of
/// <see cref="Lab.KernelQuirks.All"/>.
/// </summary>
internal sealed record HostSpec(
    ulong Memory,
    ulong PageSize,
    IommuHardware Iommu,
    IReadOnlyList<ulong>? IommuPageSizes,
    AddressRangeSpec? Aperture,
    IReadOnlyList<ReservedRegionSpec> ReservedRegions,
    string Kernel,
    IReadOnlyList<string> Quirks,
    HostParams Params,
    FrameLayoutSpec Frames)
{
    public const ulong DefaultMemory = 16UL << 30;

    public const ulong DefaultPageSize = 4096;

    public static IReadOnlyList<ulong> AllowedPageSizes { get; } = [4UL << 10, 16UL << 10, 64UL << 10];

    public static HostSpec Default { get; } = new(DefaultMemory, DefaultPageSize, IommuHardware.VtD, null, null, [],
        Lab.KernelProfiles.Seeds, [], HostParams.Default, FrameLayoutSpec.Default);

    public bool HasQuirk(string name) => Quirks.Contains(name, StringComparer.Ordinal);
}
