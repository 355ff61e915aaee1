using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>A group attached to a type1 container (struct vfio_iommu_group): the VFIO group, its IOMMU
/// group (null for an emulated group), and whether it declared pinned-page dirty scope.</summary>
/// <remarks>Protected by the container's lock.</remarks>
internal sealed class Type1Group(VfioGroup group, IommuGroup? iommuGroup, bool pinnedPageDirtyScope)
{
    /// <summary>The VFIO group.</summary>
    public VfioGroup Group { get; } = group;

    /// <summary>The IOMMU group, or null for an emulated (mdev) group.</summary>
    public IommuGroup? IommuGroup { get; } = iommuGroup;

    /// <summary><c>pinned_page_dirty_scope</c>: emulated groups start in it.</summary>
    public bool PinnedPageDirtyScope { get; set; } = pinnedPageDirtyScope;

    /// <inheritdoc />
    public override string ToString() => $"group {Group.Number}";
}
