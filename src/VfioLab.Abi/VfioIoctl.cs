namespace VfioLab.Abi;

/// <summary>
/// The ioctl request codes of <c>linux/vfio.h</c>, named like the C macros without <c>VFIO_</c>, with a name
/// table for scenario files (<c>"VFIO_IOMMU_MAP_DMA"</c>) and the reverse lookup for traces.
/// </summary>
/// <remarks>
/// Every code is <c>_IO(VFIO_TYPE, VFIO_BASE + n)</c> = <c>0x3B00 | (100 + n)</c>: no size or direction is
/// encoded, and the same code means different things on different files (see <see cref="VfioIoctlTarget"/>).
/// </remarks>
public static partial class VfioIoctl
{
    /// <summary><c>VFIO_API_VERSION</c>: what <see cref="GetApiVersion"/> returns.</summary>
    public const int ApiVersion = 0;

    /// <summary><c>VFIO_TYPE</c>: the ioctl type byte, <c>';'</c>.</summary>
    public const uint Type = 0x3B;

    /// <summary><c>VFIO_BASE</c>: the first ioctl number.</summary>
    public const uint Base = 100;

    /// <summary><c>VFIO_GET_API_VERSION</c> (container): returns <see cref="ApiVersion"/>.</summary>
    public const uint GetApiVersion = 0x3B64;

    /// <summary><c>VFIO_CHECK_EXTENSION</c> (container; arg by value, a <see cref="VfioExtension"/> id): 0 or positive.</summary>
    public const uint CheckExtension = 0x3B65;

    /// <summary><c>VFIO_SET_IOMMU</c> (container; arg by value, an IOMMU type from <see cref="VfioExtension"/>).</summary>
    public const uint SetIommu = 0x3B66;

    /// <summary><c>VFIO_GROUP_GET_STATUS</c> (group; <see cref="VfioGroupStatus"/>).</summary>
    public const uint GroupGetStatus = 0x3B67;

    /// <summary><c>VFIO_GROUP_SET_CONTAINER</c> (group; pointer to an s32 container fd).</summary>
    public const uint GroupSetContainer = 0x3B68;

    /// <summary><c>VFIO_GROUP_UNSET_CONTAINER</c> (group; no argument).</summary>
    public const uint GroupUnsetContainer = 0x3B69;

    /// <summary><c>VFIO_GROUP_GET_DEVICE_FD</c> (group; pointer to the device name string): returns a device fd.</summary>
    public const uint GroupGetDeviceFd = 0x3B6A;

    /// <summary><c>VFIO_DEVICE_GET_INFO</c> (device; <see cref="VfioDeviceInfo"/>).</summary>
    public const uint DeviceGetInfo = 0x3B6B;

    /// <summary><c>VFIO_DEVICE_GET_REGION_INFO</c> (device; <see cref="VfioRegionInfo"/>).</summary>
    public const uint DeviceGetRegionInfo = 0x3B6C;

    /// <summary><c>VFIO_DEVICE_GET_IRQ_INFO</c> (device; <see cref="VfioIrqInfo"/>).</summary>
    public const uint DeviceGetIrqInfo = 0x3B6D;

    /// <summary><c>VFIO_DEVICE_SET_IRQS</c> (device; <see cref="VfioIrqSet"/> and its data).</summary>
    public const uint DeviceSetIrqs = 0x3B6E;

    /// <summary><c>VFIO_DEVICE_RESET</c> (device; no argument).</summary>
    public const uint DeviceReset = 0x3B6F;

    /// <summary><c>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO</c> (vfio-pci device; <see cref="VfioPciHotResetInfo"/>). Same code as <see cref="IommuGetInfo"/>.</summary>
    public const uint DeviceGetPciHotResetInfo = 0x3B70;

    /// <summary><c>VFIO_DEVICE_PCI_HOT_RESET</c> (vfio-pci device; <see cref="VfioPciHotReset"/>). Same code as <see cref="IommuMapDma"/>.</summary>
    public const uint DevicePciHotReset = 0x3B71;

    /// <summary><c>VFIO_DEVICE_QUERY_GFX_PLANE</c> (mdev display device).</summary>
    public const uint DeviceQueryGfxPlane = 0x3B72;

    /// <summary><c>VFIO_DEVICE_GET_GFX_DMABUF</c> (mdev display device).</summary>
    public const uint DeviceGetGfxDmabuf = 0x3B73;

    /// <summary><c>VFIO_DEVICE_IOEVENTFD</c> (vfio-pci device).</summary>
    public const uint DeviceIoeventfd = 0x3B74;

    /// <summary><c>VFIO_DEVICE_FEATURE</c> (device).</summary>
    public const uint DeviceFeature = 0x3B75;

    /// <summary><c>VFIO_IOMMU_GET_INFO</c> (type1; <see cref="VfioIommuType1Info"/> and its capability chain).</summary>
    public const uint IommuGetInfo = 0x3B70;

    /// <summary><c>VFIO_IOMMU_MAP_DMA</c> (type1; <see cref="VfioIommuType1DmaMap"/>; also sPAPR, same struct).</summary>
    public const uint IommuMapDma = 0x3B71;

    /// <summary><c>VFIO_IOMMU_UNMAP_DMA</c> (type1; <see cref="VfioIommuType1DmaUnmap"/>; also sPAPR, same struct).</summary>
    public const uint IommuUnmapDma = 0x3B72;

    /// <summary><c>VFIO_IOMMU_ENABLE</c> (sPAPR v1 only; no argument; type1 answers ENOTTY).</summary>
    public const uint IommuEnable = 0x3B73;

    /// <summary><c>VFIO_IOMMU_DISABLE</c> (sPAPR v1 only; no argument; type1 answers ENOTTY).</summary>
    public const uint IommuDisable = 0x3B74;

    /// <summary><c>VFIO_IOMMU_DIRTY_PAGES</c> (type1 v2; <see cref="VfioIommuType1DirtyBitmap"/>).</summary>
    public const uint IommuDirtyPages = 0x3B75;

    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_GET_INFO</c> (sPAPR; <see cref="VfioIommuSpaprTceInfo"/>). Same code as <see cref="IommuGetInfo"/>.</summary>
    public const uint IommuSpaprTceGetInfo = 0x3B70;

    /// <summary><c>VFIO_IOMMU_SPAPR_REGISTER_MEMORY</c> (sPAPR v2; <see cref="VfioIommuSpaprRegisterMemory"/>). Same code as <see cref="IommuDirtyPages"/>.</summary>
    public const uint IommuSpaprRegisterMemory = 0x3B75;

    /// <summary><c>VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY</c> (sPAPR v2; <see cref="VfioIommuSpaprRegisterMemory"/>).</summary>
    public const uint IommuSpaprUnregisterMemory = 0x3B76;

    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_CREATE</c> (sPAPR v2; <see cref="VfioIommuSpaprTceCreate"/>).</summary>
    public const uint IommuSpaprTceCreate = 0x3B77;

    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_REMOVE</c> (sPAPR v2; <see cref="VfioIommuSpaprTceRemove"/>).</summary>
    public const uint IommuSpaprTceRemove = 0x3B78;

    /// <summary><c>VFIO_EEH_PE_OP</c> (sPAPR EEH; <see cref="VfioEehPeOp"/>).</summary>
    public const uint EehPeOp = 0x3B79;
}
