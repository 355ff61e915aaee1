namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioRegionInfo"/> (<c>VFIO_REGION_INFO_FLAG_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum RegionInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>READ: the region supports read.</summary>
    Read = 1,
    /// <summary>WRITE: the region supports write.</summary>
    Write = 2,
    /// <summary>MMAP: the region (or the areas of its sparse-mmap capability) supports mmap.</summary>
    Mmap = 4,
    /// <summary>CAPS: the info supports a capability chain.</summary>
    Caps = 8,
}
