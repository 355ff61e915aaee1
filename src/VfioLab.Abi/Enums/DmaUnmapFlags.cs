namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIommuType1DmaUnmap"/> (<c>VFIO_DMA_UNMAP_FLAG_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum DmaUnmapFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>GET_DIRTY_BITMAP: report the dirty pages of the unmapped range into the <see cref="VfioBitmap"/> that follows (v5.8+).</summary>
    GetDirtyBitmap = 1,
    /// <summary>ALL: unmap every mapping; iova and size must be 0 (v5.12+).</summary>
    All = 2,
    /// <summary>VADDR: invalidate the vaddr of the mappings instead of unmapping them (v5.12+).</summary>
    Vaddr = 4,
}
