using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Tests.Concurrency;

/// <summary>The type1 ioctls with a user buffer that the stress and fail-nth tests issue through a process's
/// syscall surface: raw results (&gt;= 0 or -errno), nothing asserted.</summary>
internal static class UserIoctls
{
    public static long Map(ISyscallSurface sys, int container, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return sys.Ioctl(container, VfioIoctl.IommuMapDma, buf);
    }

    public static (long Ret, ulong Size) Unmap(ISyscallSurface sys, int container, ulong iova, ulong size, DmaUnmapFlags flags = DmaUnmapFlags.None)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size }.Write(buf);
        long ret = sys.Ioctl(container, VfioIoctl.IommuUnmapDma, buf);
        VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
        return (ret, back.Size);
    }

    /// <summary>UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP into the user bitmap at <paramref name="data"/>.</summary>
    public static (long Ret, ulong Size) UnmapWithBitmap(ISyscallSurface sys, int container, ulong iova, ulong size, ulong pgsize, ulong data, ulong bitmapBytes)
    {
        byte[] buf = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
        new VfioIommuType1DmaUnmap { Argsz = (uint)buf.Length, Flags = DmaUnmapFlags.GetDirtyBitmap, Iova = iova, Size = size }.Write(buf);
        new VfioBitmap { Pgsize = pgsize, Size = bitmapBytes, Data = data }.Write(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
        long ret = sys.Ioctl(container, VfioIoctl.IommuUnmapDma, buf);
        return (ret, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Size)));
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES with START or STOP.</summary>
    public static long Dirty(ISyscallSurface sys, int container, DirtyPagesFlags flags)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DirtyBitmap.SizeOf];
        new VfioIommuType1DirtyBitmap { Argsz = VfioIommuType1DirtyBitmap.SizeOf, Flags = flags }.Write(buf);
        return sys.Ioctl(container, VfioIoctl.IommuDirtyPages, buf);
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP of [iova, iova + size) into the user bitmap at <paramref name="data"/>.</summary>
    public static long GetBitmap(ISyscallSurface sys, int container, ulong iova, ulong size, ulong pgsize, ulong data, ulong bitmapBytes)
    {
        byte[] buf = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = (uint)buf.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(buf);
        new VfioIommuType1DirtyBitmapGet { Iova = iova, Size = size, Bitmap = new VfioBitmap { Pgsize = pgsize, Size = bitmapBytes, Data = data } }
            .Write(buf.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
        return sys.Ioctl(container, VfioIoctl.IommuDirtyPages, buf);
    }

    /// <summary>VFIO_DMA_MAP_FLAG_VADDR: gives the mapping at [iova, iova + size) the new <paramref name="vaddr"/>.</summary>
    public static long UpdateVaddr(ISyscallSurface sys, int container, ulong iova, ulong vaddr, ulong size) =>
        Map(sys, container, iova, vaddr, size, DmaMapFlags.Vaddr);
}
