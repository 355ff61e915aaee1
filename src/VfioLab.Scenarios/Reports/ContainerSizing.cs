namespace VfioLab.Scenarios.Reports;

/// <summary>One container's DMA mappings over a run, against its <c>dma_entry_limit</c>.</summary>
internal sealed record ContainerSizing(int Id, ulong PeakMappings, ulong EntryLimit);
