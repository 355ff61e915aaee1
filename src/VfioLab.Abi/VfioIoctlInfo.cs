namespace VfioLab.Abi;

/// <summary>One ioctl of <c>linux/vfio.h</c>: its C macro name, its request code and which file answers it.</summary>
/// <param name="Name">The C macro, e.g. <c>VFIO_IOMMU_MAP_DMA</c>.</param>
/// <param name="Code">The request code, <c>_IO(';', 100 + n)</c>.</param>
/// <param name="Target">The file and code that answer it.</param>
public readonly record struct VfioIoctlInfo(string Name, uint Code, VfioIoctlTarget Target);
