namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIommuType1DmaMap"/> (<c>VFIO_DMA_MAP_FLAG_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum DmaMapFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>READ: the device may read the memory.</summary>
    Read = 1,
    /// <summary>WRITE: the device may write the memory.</summary>
    Write = 2,
    /// <summary>VADDR: supply a new vaddr for an invalidated mapping; READ and WRITE must be clear (v5.12+).</summary>
    Vaddr = 4,
}
