using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>Type1 DMA mapping: MAP_DMA, UNMAP_DMA (range, ALL), and the VADDR live-update pair.</summary>
public sealed partial class Container
{
    /// <summary><c>VFIO_IOMMU_MAP_DMA</c>: maps <paramref name="size"/> bytes of this process's memory at
    /// <paramref name="vaddr"/> to <paramref name="iova"/>.</summary>
    /// <exception cref="VfioException">EEXIST (overlap), EINVAL (alignment, flags), ENOMEM (RLIMIT_MEMLOCK), ENOSPC
    /// (dma_entry_limit), EFAULT (unmapped memory), EPERM (read-only memory mapped writable), ...; also a positive
    /// answer (<see cref="VfioException.Errno"/> None), which sPAPR gives for an IOVA off a TCE page.</exception>
    public void MapDma(ulong iova, ulong vaddr, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write)
    {
        var map = new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size };
        Syscall.IoctlZero(Sys, Fd, VfioIoctl.IommuMapDma, Struct(map),
            () => $"map_dma fd {Fd} iova 0x{iova:x} vaddr 0x{vaddr:x} size 0x{size:x} flags {AbiNames.Format(flags)}");
    }

    /// <summary><c>VFIO_IOMMU_UNMAP_DMA</c> of [<paramref name="iova"/>, +<paramref name="size"/>). Returns the bytes
    /// the kernel unmapped (written back in <c>size</c>; the sPAPR backend writes nothing back, so there it is the
    /// size asked for).</summary>
    public ulong UnmapDma(ulong iova, ulong size) => Unmap(iova, size, DmaUnmapFlags.None, "unmap_dma");

    /// <summary><c>VFIO_IOMMU_UNMAP_DMA</c> with ALL (v5.12+): removes every mapping. Returns the bytes unmapped.</summary>
    public ulong UnmapAll() => Unmap(0, 0, DmaUnmapFlags.All, "unmap_dma_all");

    /// <summary>UNMAP_DMA with VADDR (live update, v5.12+): the mappings in the range keep translating but their
    /// vaddr becomes invalid until <see cref="UpdateVaddr"/>; with <paramref name="all"/>, every mapping.</summary>
    public ulong InvalidateVaddr(ulong iova, ulong size, bool all = false) =>
        Unmap(all ? 0 : iova, all ? 0 : size, DmaUnmapFlags.Vaddr | (all ? DmaUnmapFlags.All : DmaUnmapFlags.None), "invalidate_vaddr");

    /// <summary>MAP_DMA with VADDR: supplies the new vaddr of a mapping invalidated by <see cref="InvalidateVaddr"/>
    /// (same iova and size; the memory must be the same).</summary>
    public void UpdateVaddr(ulong iova, ulong vaddr, ulong size) => MapDma(iova, vaddr, size, DmaMapFlags.Vaddr);

    private ulong Unmap(ulong iova, ulong size, DmaUnmapFlags flags, string what)
    {
        var unmap = new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size };
        byte[] buffer = Struct(unmap);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuUnmapDma, buffer, () => $"{what} fd {Fd} iova 0x{iova:x} size 0x{size:x}");
        return ReadU64(buffer, VfioIommuType1DmaUnmap.Offsets.Size);
    }
}
