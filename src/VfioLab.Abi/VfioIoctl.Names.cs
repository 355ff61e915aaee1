using System.Collections.Frozen;

namespace VfioLab.Abi;

/// <summary>The name table of the request codes.</summary>
public static partial class VfioIoctl
{
    /// <summary>Every request code of this class with its C macro name and target, in order of code.</summary>
    public static IReadOnlyList<VfioIoctlInfo> All { get; } =
    [
        new("VFIO_GET_API_VERSION", GetApiVersion, VfioIoctlTarget.Container),
        new("VFIO_CHECK_EXTENSION", CheckExtension, VfioIoctlTarget.Container),
        new("VFIO_SET_IOMMU", SetIommu, VfioIoctlTarget.Container),
        new("VFIO_GROUP_GET_STATUS", GroupGetStatus, VfioIoctlTarget.Group),
        new("VFIO_GROUP_SET_CONTAINER", GroupSetContainer, VfioIoctlTarget.Group),
        new("VFIO_GROUP_UNSET_CONTAINER", GroupUnsetContainer, VfioIoctlTarget.Group),
        new("VFIO_GROUP_GET_DEVICE_FD", GroupGetDeviceFd, VfioIoctlTarget.Group),
        new("VFIO_DEVICE_GET_INFO", DeviceGetInfo, VfioIoctlTarget.Device),
        new("VFIO_DEVICE_GET_REGION_INFO", DeviceGetRegionInfo, VfioIoctlTarget.Device),
        new("VFIO_DEVICE_GET_IRQ_INFO", DeviceGetIrqInfo, VfioIoctlTarget.Device),
        new("VFIO_DEVICE_SET_IRQS", DeviceSetIrqs, VfioIoctlTarget.Device),
        new("VFIO_DEVICE_RESET", DeviceReset, VfioIoctlTarget.Device),
        new("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", DeviceGetPciHotResetInfo, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_GET_INFO", IommuGetInfo, VfioIoctlTarget.Type1),
        new("VFIO_IOMMU_SPAPR_TCE_GET_INFO", IommuSpaprTceGetInfo, VfioIoctlTarget.Spapr),
        new("VFIO_DEVICE_PCI_HOT_RESET", DevicePciHotReset, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_MAP_DMA", IommuMapDma, VfioIoctlTarget.Type1),
        new("VFIO_DEVICE_QUERY_GFX_PLANE", DeviceQueryGfxPlane, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_UNMAP_DMA", IommuUnmapDma, VfioIoctlTarget.Type1),
        new("VFIO_DEVICE_GET_GFX_DMABUF", DeviceGetGfxDmabuf, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_ENABLE", IommuEnable, VfioIoctlTarget.Spapr),
        new("VFIO_DEVICE_IOEVENTFD", DeviceIoeventfd, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_DISABLE", IommuDisable, VfioIoctlTarget.Spapr),
        new("VFIO_DEVICE_FEATURE", DeviceFeature, VfioIoctlTarget.Device),
        new("VFIO_IOMMU_DIRTY_PAGES", IommuDirtyPages, VfioIoctlTarget.Type1),
        new("VFIO_IOMMU_SPAPR_REGISTER_MEMORY", IommuSpaprRegisterMemory, VfioIoctlTarget.Spapr),
        new("VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY", IommuSpaprUnregisterMemory, VfioIoctlTarget.Spapr),
        new("VFIO_IOMMU_SPAPR_TCE_CREATE", IommuSpaprTceCreate, VfioIoctlTarget.Spapr),
        new("VFIO_IOMMU_SPAPR_TCE_REMOVE", IommuSpaprTceRemove, VfioIoctlTarget.Spapr),
        new("VFIO_EEH_PE_OP", EehPeOp, VfioIoctlTarget.Spapr),
    ];

    private static readonly FrozenDictionary<string, VfioIoctlInfo> ByName =
        All.ToFrozenDictionary(i => i.Name, StringComparer.Ordinal);

    /// <summary>The request code of the C macro <paramref name="name"/> (<c>VFIO_IOMMU_MAP_DMA</c>; case-sensitive).</summary>
    public static bool TryParse(string name, out uint code)
    {
        bool found = ByName.TryGetValue(name, out VfioIoctlInfo info);
        code = info.Code;
        return found;
    }

    /// <summary>The ioctl named <paramref name="name"/>, with its code and target.</summary>
    public static bool TryGetInfo(string name, out VfioIoctlInfo info) => ByName.TryGetValue(name, out info);

    /// <summary>The name of <paramref name="code"/> as <paramref name="target"/> understands it, if it knows the code.</summary>
    public static bool TryGetName(uint code, VfioIoctlTarget target, out string name)
    {
        foreach (VfioIoctlInfo info in All)
        {
            if (info.Code == code && info.Target == target)
            {
                name = info.Name;
                return true;
            }
        }
        name = "";
        return false;
    }

    /// <summary>Every name <paramref name="code"/> has on any file, in the order of <see cref="All"/>; empty for an unknown code.</summary>
    public static IReadOnlyList<string> GetNames(uint code) => [.. All.Where(i => i.Code == code).Select(i => i.Name)];

    /// <summary>A name for traces: the names of <paramref name="code"/> joined by <c>/</c>, or its hex value when unknown.</summary>
    public static string Describe(uint code)
    {
        IReadOnlyList<string> names = GetNames(code);
        return names.Count == 0 ? $"0x{code:X}" : string.Join('/', names);
    }
}
