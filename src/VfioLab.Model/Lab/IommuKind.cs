namespace VfioLab.Lab;

/// <summary>The IOMMU hardware a simulated host has; each comes with the page sizes, aperture and
/// reserved regions of the real unit (Intel VT-d, AMD-Vi, Arm SMMUv3, POWER's TCE tables).</summary>
public enum IommuKind
{
    /// <summary>Intel VT-d: 4 KiB, 2 MiB and 1 GiB pages, a 48-bit aperture, the MSI window at 0xfee00000 reserved.</summary>
    VtD,

    /// <summary>AMD-Vi: every power-of-two page size from 4 KiB, the HyperTransport and MSI windows reserved.</summary>
    AmdVi,

    /// <summary>Arm SMMUv3 with 4 KiB granule: 4 KiB, 2 MiB and 1 GiB pages, a software MSI window.</summary>
    SmmuV3,

    /// <summary>POWER's TCE tables: a host that registers the sPAPR TCE backend instead of type1.</summary>
    SpaprTce,
}
