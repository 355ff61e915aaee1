namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIommuSpaprTceInfo"/> (<c>VFIO_IOMMU_SPAPR_INFO_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum SpaprInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>DDW: dynamic DMA windows are supported and <c>ddw</c> is valid.</summary>
    Ddw = 1,
}
