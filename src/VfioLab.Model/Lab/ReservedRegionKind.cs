namespace VfioLab.Lab;

/// <summary>The kind of an IOVA range a host reserves beside its IOMMU profile's own (iommu_resv_type).</summary>
public enum ReservedRegionKind
{
    /// <summary>IOMMU_RESV_RESERVED: never mapped.</summary>
    Reserved,

    /// <summary>IOMMU_RESV_MSI: a hardware MSI window.</summary>
    Msi,

    /// <summary>IOMMU_RESV_DIRECT: an identity-mapped range (RMRR).</summary>
    Direct,

    /// <summary>IOMMU_RESV_DIRECT_RELAXABLE: an identity range a device assigned to user space may drop.</summary>
    DirectRelaxable,

    /// <summary>IOMMU_RESV_SW_MSI: the software MSI window the kernel maps itself (Arm).</summary>
    SwMsi,
}
