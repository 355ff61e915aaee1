using VfioLab.Abi;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Simulation;

/// <summary>An IOMMU-layer group as the VFIO core sees it (the iommu_group behind a vfio_group).</summary>
internal sealed class IommuGroupBacking(IommuGroup group) : IVfioGroupBacking
{
    /// <summary>The IOMMU group.</summary>
    public IommuGroup Group { get; } = group;

    /// <inheritdoc />
    IommuGroup? IVfioGroupBacking.IommuGroup => Group;

    /// <inheritdoc />
    public bool Present => Group.Members.Count > 0;

    /// <inheritdoc />
    public bool DmaOwnerClaimedByKernel => !Group.IsViable;

    /// <inheritdoc />
    public Errno ClaimDmaOwner(object owner) => Group.ClaimDmaOwner(owner);

    /// <inheritdoc />
    public void ReleaseDmaOwner(object owner) => Group.ReleaseDmaOwner(owner);
}
