using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>What <c>VFIO_IOMMU_SPAPR_TCE_GET_INFO</c> answered: the default 32-bit DMA window and, with DDW (v2),
/// the dynamic-window limits.</summary>
/// <param name="Flags">DDW when dynamic windows are supported.</param>
/// <param name="Dma32WindowStart">Start of the default window.</param>
/// <param name="Dma32WindowSize">Size of the default window.</param>
/// <param name="DdwPageSizes">Page sizes a dynamic window may use (0 without DDW).</param>
/// <param name="MaxDynamicWindows">How many windows can exist at once (0 without DDW).</param>
/// <param name="Levels">Maximum TCE table levels (0 without DDW).</param>
public sealed record SpaprInfo(SpaprInfoFlags Flags, uint Dma32WindowStart, uint Dma32WindowSize, ulong DdwPageSizes, uint MaxDynamicWindows, uint Levels);
