namespace VfioLab.Abi;

/// <summary>The layout of one C struct of <c>linux/vfio.h</c> as this project encodes it.</summary>
/// <param name="CName">The struct's tag, e.g. <c>vfio_iommu_type1_dma_map</c>.</param>
/// <param name="SizeOf"><c>sizeof</c> on x86-64.</param>
/// <param name="Fields">Every field in declaration order, flexible arrays included (at their <c>offsetof</c>).</param>
public sealed record AbiStructLayout(string CName, int SizeOf, IReadOnlyList<AbiFieldLayout> Fields);
