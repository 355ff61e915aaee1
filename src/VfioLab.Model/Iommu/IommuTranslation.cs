using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>Why the IOMMU refused a device access: the fault reasons of a DMA remapping fault record
/// (VT-d fault reasons, SMMU F_TRANSLATION / F_PERMISSION events), reduced to what the model tells apart.</summary>
internal enum IommuFaultReason
{
    /// <summary>No error.</summary>
    None,

    /// <summary>No IOPTE covers the IOVA (translation fault).</summary>
    NotMapped,

    /// <summary>The IOPTE lacks read permission for a read (DMA from memory).</summary>
    ReadDenied,

    /// <summary>The IOPTE lacks write permission for a write.</summary>
    WriteDenied,

    /// <summary>The group is not attached to a paging domain (blocked DMA).</summary>
    NoDomain,

    /// <summary>An emulated (mdev) device has no IOMMU; its DMA goes through the vendor driver, not here.</summary>
    NoIommu,

    /// <summary>The IOMMU translated the access but nothing completed it: the address lands in a peer's BAR
    /// while that function does not decode memory (memory disabled or in reset), or in neither RAM nor a BAR.
    /// Not an IOMMU fault proper but a PCIe Unsupported Request (reported through AER); the model records it
    /// in the same fault log so a device's rejected DMA has one place to look.</summary>
    UnsupportedRequest,
}

/// <summary>
/// The result of translating one device access at an IOVA (the IOMMU's page walk,
/// <c>iommu_iova_to_phys</c> plus a permission check): the physical address, or a fault reason;
/// on success also how far the same run of IOPTEs continues, so callers walk by runs, not pages.
/// </summary>
internal readonly record struct IommuTranslation(IommuFaultReason Fault, PhysAddr Phys, ulong ContiguousBytes, IommuProt Prot, ulong PageSize)
{
    /// <summary>Whether the access is allowed.</summary>
    public bool Ok => Fault == IommuFaultReason.None;

    /// <summary>A failed translation.</summary>
    public static IommuTranslation Faulted(IommuFaultReason reason) => new(reason, default, 0, IommuProt.None, 0);
}
