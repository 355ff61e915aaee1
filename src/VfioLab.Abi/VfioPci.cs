namespace VfioLab.Abi;

/// <summary>
/// The vfio-pci device layout: fixed region and irq counts from <c>linux/vfio.h</c>, and how a region index
/// maps to an offset in the device fd.
/// </summary>
/// <remarks>
/// The offset encoding (<c>VFIO_PCI_INDEX_TO_OFFSET</c>, <c>index &lt;&lt; 40</c>) is vfio-pci's convention, not uAPI:
/// users must take a region's offset from <see cref="VfioRegionInfo.Offset"/>. The model's vfio-pci uses it as Linux does.
/// </remarks>
public static class VfioPci
{
    /// <summary><c>VFIO_PCI_NUM_REGIONS</c>: fixed region indexes; indexes from 9 on are device-specific, described by a type capability.</summary>
    public const uint NumRegions = 9;

    /// <summary><c>VFIO_PCI_NUM_IRQS</c>: number of fixed irq indexes.</summary>
    public const uint NumIrqs = 5;

    /// <summary><c>VFIO_PCI_OFFSET_SHIFT</c>: bits of the in-region offset.</summary>
    public const int OffsetShift = 40;

    /// <summary><c>VFIO_PCI_OFFSET_MASK</c>: the in-region part of a device-fd offset.</summary>
    public const ulong OffsetMask = (1UL << OffsetShift) - 1;

    /// <summary><c>VFIO_PCI_INDEX_TO_OFFSET</c>: the device-fd offset at which region <paramref name="index"/> starts.</summary>
    public static ulong IndexToOffset(uint index) => (ulong)index << OffsetShift;

    /// <summary><c>VFIO_PCI_INDEX_TO_OFFSET</c> for a fixed region.</summary>
    public static ulong IndexToOffset(VfioPciRegionIndex index) => IndexToOffset((uint)index);

    /// <summary><c>VFIO_PCI_OFFSET_TO_INDEX</c>: the region a device-fd offset falls in.</summary>
    public static uint OffsetToIndex(ulong offset) => (uint)(offset >> OffsetShift);
}
