using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>What <c>VFIO_DEVICE_GET_REGION_INFO</c> answered for one region, with its capabilities decoded.</summary>
/// <param name="Index">The region index (for vfio-pci: BAR0..BAR5, ROM, CONFIG, VGA).</param>
/// <param name="Flags">READ, WRITE, MMAP, CAPS.</param>
/// <param name="Size">Region size in bytes (0: the region does not exist).</param>
/// <param name="Offset">Where the region starts in the device fd's file offsets (pread/pwrite/mmap).</param>
/// <param name="SparseMmapAreas">Mmappable parts (SPARSE_MMAP capability), or null when the capability is absent.</param>
public sealed record RegionInfo(uint Index, RegionInfoFlags Flags, ulong Size, ulong Offset, IReadOnlyList<SparseMmapArea>? SparseMmapAreas)
{
    /// <summary>Whether the region can be mmapped.</summary>
    public bool CanMmap => (Flags & RegionInfoFlags.Mmap) != 0;
}
