using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>One attached group (struct vfio_iommu_group) as copied into a <see cref="VfioIommuSnapshot"/>.</summary>
/// <param name="Group">The VFIO group.</param>
/// <param name="IommuGroup">Its IOMMU group; null for an emulated group.</param>
/// <param name="PinnedPageDirtyScope"><c>pinned_page_dirty_scope</c>.</param>
internal sealed record Type1GroupSnapshot(VfioGroup Group, IommuGroup? IommuGroup, bool PinnedPageDirtyScope)
{
    /// <inheritdoc />
    public override string ToString() => $"group {Group.Number}";
}
