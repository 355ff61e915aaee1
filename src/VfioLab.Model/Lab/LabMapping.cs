namespace VfioLab.Lab;

/// <summary>One DMA mapping of a type1 container (<c>struct vfio_dma</c>), as inspection shows it.</summary>
/// <param name="Iova">First IOVA.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Vaddr">The user address it maps.</param>
/// <param name="Readable">The device may read it.</param>
/// <param name="Writable">The device may write it.</param>
/// <param name="VaddrInvalid">Its vaddr was invalidated (UNMAP with VFIO_DMA_UNMAP_FLAG_VADDR) and awaits a new one.</param>
/// <param name="OwnerPid">The process that owns its pins and charges.</param>
/// <param name="LockedPages">The pages it charged to its owner's <c>locked_vm</c>.</param>
public sealed record LabMapping(ulong Iova, ulong Size, ulong Vaddr, bool Readable, bool Writable, bool VaddrInvalid, int OwnerPid, long LockedPages)
{
    /// <summary>Whether the mapping is pinned and in the IOMMU domains (<c>dma-&gt;iommu_mapped</c>); false while the
    /// container has no IOMMU domain (only an mdev's emulated group attached), where pages are pinned on demand.</summary>
    public bool IommuMapped { get; init; }
}
