namespace VfioLab.Abi;

/// <summary>A named value of <c>linux/vfio.h</c>: a request code, an extension id, a flag bit, an index.</summary>
/// <param name="CName">The C macro or enumerator, e.g. <c>VFIO_IOMMU_MAP_DMA</c>.</param>
/// <param name="Value">Its value.</param>
public readonly record struct AbiConstant(string CName, ulong Value);
