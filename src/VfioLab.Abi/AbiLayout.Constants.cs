using System.Globalization;

namespace VfioLab.Abi;

/// <summary>How the enums' short names map back to C macro names.</summary>
public static partial class AbiLayout
{
    private static AbiConstant[] BuildConstants()
    {
        var constants = new List<AbiConstant> { new("VFIO_API_VERSION", VfioIoctl.ApiVersion) };
        constants.AddRange(VfioExtension.All);
        AddEnum<GroupStatusFlags>(constants, "VFIO_GROUP_FLAGS_");
        AddEnum<DeviceInfoFlags>(constants, "VFIO_DEVICE_FLAGS_");
        AddEnum<DeviceInfoCapId>(constants, "VFIO_DEVICE_INFO_CAP_");
        AddEnum<RegionInfoFlags>(constants, "VFIO_REGION_INFO_FLAG_");
        AddEnum<RegionInfoCapId>(constants, "VFIO_REGION_INFO_CAP_");
        AddEnum<IrqInfoFlags>(constants, "VFIO_IRQ_INFO_");
        AddEnum<IrqSetFlags>(constants, "VFIO_IRQ_SET_");
        AddEnum<VfioPciRegionIndex>(constants, "VFIO_PCI_", "_REGION_INDEX");
        constants.Add(new("VFIO_PCI_NUM_REGIONS", VfioPci.NumRegions));
        AddEnum<VfioPciIrqIndex>(constants, "VFIO_PCI_", "_IRQ_INDEX");
        constants.Add(new("VFIO_PCI_NUM_IRQS", VfioPci.NumIrqs));
        AddEnum<IommuInfoFlags>(constants, "VFIO_IOMMU_INFO_");
        // The header names the third type1 capability without "CAP_".
        constants.Add(new("VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", (ulong)IommuType1InfoCapId.IovaRange));
        constants.Add(new("VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION", (ulong)IommuType1InfoCapId.Migration));
        constants.Add(new("VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL", (ulong)IommuType1InfoCapId.DmaAvail));
        AddEnum<DmaMapFlags>(constants, "VFIO_DMA_MAP_FLAG_");
        AddEnum<DmaUnmapFlags>(constants, "VFIO_DMA_UNMAP_FLAG_");
        AddEnum<DirtyPagesFlags>(constants, "VFIO_IOMMU_DIRTY_PAGES_FLAG_");
        AddEnum<SpaprInfoFlags>(constants, "VFIO_IOMMU_SPAPR_INFO_");
        AddEnum<EehPeOperation>(constants, "VFIO_EEH_PE_");
        AddEnum<EehPeState>(constants, "VFIO_EEH_PE_STATE_");
        return [.. constants];
    }

    private static void AddEnum<TEnum>(List<AbiConstant> constants, string prefix, string suffix = "")
        where TEnum : struct, Enum
    {
        foreach (KeyValuePair<string, TEnum> entry in AbiNames.GetEntries<TEnum>())
        {
            constants.Add(new(prefix + entry.Key + suffix, Convert.ToUInt64(entry.Value, CultureInfo.InvariantCulture)));
        }
    }
}
