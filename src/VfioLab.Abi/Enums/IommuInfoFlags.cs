namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIommuType1Info"/> (<c>VFIO_IOMMU_INFO_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum IommuInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>PGSIZES: <c>iova_pgsizes</c> is valid.</summary>
    Pgsizes = 1,
    /// <summary>CAPS: a capability chain exists (it may not have fitted: then <c>cap_offset</c> is 0).</summary>
    Caps = 2,
}
