namespace VfioLab.Vfio;

/// <summary>What a backend reports of its state to checks and reports: live mappings and free slots.</summary>
internal interface IVfioIommuInspection
{
    /// <summary>Live DMA mappings.</summary>
    ulong MappingCount { get; }

    /// <summary>Remaining mapping slots (dma_avail).</summary>
    ulong DmaAvail { get; }
}
