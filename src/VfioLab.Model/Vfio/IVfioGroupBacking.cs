using VfioLab.Abi;

namespace VfioLab.Vfio;

/// <summary>
/// What a VFIO group needs from the IOMMU layer's group (struct iommu_group): whether it still
/// exists, DMA ownership (claimed by VFIO at SET_CONTAINER; refused while a kernel driver uses the
/// DMA API on a member), and the group itself for backends.
/// </summary>
internal interface IVfioGroupBacking
{
    /// <summary>Whether the IOMMU group still exists.</summary>
    bool Present { get; }

    /// <summary>Whether a kernel driver holds DMA ownership (iommu_group_dma_owner_claimed): not viable.</summary>
    bool DmaOwnerClaimedByKernel { get; }

    /// <summary>iommu_group_claim_dma_owner: EPERM when not viable.</summary>
    Errno ClaimDmaOwner(object owner);

    /// <summary>The IOMMU layer's group (null for a backing that has none, as test fakes).</summary>
    Iommu.IommuGroup? IommuGroup { get; }

    /// <summary>iommu_group_release_dma_owner.</summary>
    void ReleaseDmaOwner(object owner);
}
