namespace VfioLab.Vfio;

/// <summary>The kind of a VFIO group (enum vfio_group_type).</summary>
internal enum VfioGroupType
{
    /// <summary>VFIO_IOMMU: a real IOMMU group; DMA ownership is claimed at SET_CONTAINER.</summary>
    Iommu,

    /// <summary>VFIO_EMULATED_IOMMU: a mediated device's group; no IOMMU domain, pages are pinned by the vendor driver.</summary>
    EmulatedIommu,
}
