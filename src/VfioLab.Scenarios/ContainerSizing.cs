namespace VfioLab.Scenarios;

/// <summary>One type1 container's DMA mappings over a run, against its <c>dma_entry_limit</c>.</summary>
/// <param name="Id">The container's id (<see cref="Lab.LabContainer.Id"/>).</param>
/// <param name="PeakMappings">The most DMA mappings it held after any step.</param>
/// <param name="EntryLimit">Its <c>dma_entry_limit</c>: mappings plus <c>dma_avail</c>.</param>
public sealed record ContainerSizing(int Id, ulong PeakMappings, ulong EntryLimit);
