namespace VfioLab.Iommu;

/// <summary>
/// Protection of an IOPTE: the kernel's <c>IOMMU_READ</c>/<c>IOMMU_WRITE</c>/... flags
/// (<c>include/linux/iommu.h</c>), with the kernel's bit values.
/// </summary>
[Flags]
internal enum IommuProt
{
    /// <summary>No access.</summary>
    None = 0,

    /// <summary>IOMMU_READ: the device may read (DMA to the device, from memory).</summary>
    Read = 1 << 0,

    /// <summary>IOMMU_WRITE: the device may write memory.</summary>
    Write = 1 << 1,

    /// <summary>IOMMU_CACHE: DMA is cache coherent (type1 always passes it since v5.19).</summary>
    Cache = 1 << 2,

    /// <summary>IOMMU_NOEXEC.</summary>
    NoExec = 1 << 3,

    /// <summary>IOMMU_MMIO: the target is device memory (a BAR), not RAM.</summary>
    Mmio = 1 << 4,

    /// <summary>IOMMU_PRIV.</summary>
    Priv = 1 << 5,

    /// <summary>Read and write.</summary>
    ReadWrite = Read | Write,
}
