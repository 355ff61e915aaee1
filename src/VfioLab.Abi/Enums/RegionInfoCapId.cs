namespace VfioLab.Abi;

/// <summary>Capability ids of a <see cref="VfioRegionInfo"/> chain (<c>VFIO_REGION_INFO_CAP_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum RegionInfoCapId : ushort
{
    /// <summary>SPARSE_MMAP: <see cref="VfioRegionInfoCapSparseMmap"/>.</summary>
    SparseMmap = 1,
    /// <summary>TYPE: <see cref="VfioRegionInfoCapType"/>.</summary>
    Type = 2,
    /// <summary>MSIX_MAPPABLE: the MSI-X table of the BAR may be mmapped (header only).</summary>
    MsixMappable = 3,
    /// <summary>NVLINK2_SSATGT: <see cref="VfioRegionInfoCapNvlink2Ssatgt"/> (deprecated).</summary>
    Nvlink2Ssatgt = 4,
    /// <summary>NVLINK2_LNKSPD: <see cref="VfioRegionInfoCapNvlink2Lnkspd"/> (deprecated).</summary>
    Nvlink2Lnkspd = 5,
}
