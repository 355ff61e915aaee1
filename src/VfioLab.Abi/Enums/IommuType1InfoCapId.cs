namespace VfioLab.Abi;

/// <summary>Capability ids of a <see cref="VfioIommuType1Info"/> chain (<c>VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE</c>, <c>..._CAP_MIGRATION</c>, <c>VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum IommuType1InfoCapId : ushort
{
    /// <summary>IOVA_RANGE: <see cref="VfioIommuType1InfoCapIovaRange"/> (v5.4+).</summary>
    IovaRange = 1,
    /// <summary>MIGRATION: <see cref="VfioIommuType1InfoCapMigration"/> (v5.8+).</summary>
    Migration = 2,
    /// <summary>DMA_AVAIL: <see cref="VfioIommuType1InfoDmaAvail"/> (v5.10+).</summary>
    DmaAvail = 3,
}
