using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>What <c>VFIO_IOMMU_GET_INFO</c> answered (type1), with its capability chain decoded.</summary>
/// <param name="Flags">PGSIZES and CAPS.</param>
/// <param name="IovaPgsizes">The page sizes mappings must be aligned to (the smallest is the minimum granule).</param>
/// <param name="IovaRanges">The usable IOVA ranges (IOVA_RANGE capability), inclusive; empty when the capability is absent.</param>
/// <param name="DmaAvail">Free DMA-mapping slots (DMA_AVAIL capability), or null when absent.</param>
/// <param name="Migration">Dirty-tracking support (MIGRATION capability), or null when absent.</param>
public sealed record IommuInfo(
    IommuInfoFlags Flags, ulong IovaPgsizes, IReadOnlyList<IovaWindow> IovaRanges, uint? DmaAvail, MigrationInfo? Migration)
{
    /// <summary>The smallest page size in <see cref="IovaPgsizes"/> (0 when none).</summary>
    public ulong MinPageSize => IovaPgsizes & (~IovaPgsizes + 1);
}
