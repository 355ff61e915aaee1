namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIommuType1DirtyBitmap"/> (<c>VFIO_IOMMU_DIRTY_PAGES_FLAG_*</c>); exactly one must be set.</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum DirtyPagesFlags : uint
{
    /// <summary>No flag (EINVAL).</summary>
    None = 0,
    /// <summary>START: start dirty tracking.</summary>
    Start = 1,
    /// <summary>STOP: stop dirty tracking.</summary>
    Stop = 2,
    /// <summary>GET_BITMAP: read and clear the dirty bits of a range into the <see cref="VfioIommuType1DirtyBitmapGet"/> that follows.</summary>
    GetBitmap = 4,
}
