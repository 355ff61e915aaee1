namespace VfioLab.Lab;

/// <summary>Why a device's DMA did not complete: the IOMMU faulted it, or the target refused the request.</summary>
public enum DmaFaultReason
{
    /// <summary>No IOMMU entry translates the IOVA (a DMAR fault / SMMU translation fault).</summary>
    NotMapped,

    /// <summary>The entry does not allow reads.</summary>
    ReadDenied,

    /// <summary>The entry does not allow writes.</summary>
    WriteDenied,

    /// <summary>The device's group is attached to no domain.</summary>
    NoDomain,

    /// <summary>The device sits behind no IOMMU unit.</summary>
    NoIommu,

    /// <summary>A peer BAR that does not decode memory (memory disabled, in reset, or its device gone) answered with an unsupported request.</summary>
    UnsupportedRequest,
}
