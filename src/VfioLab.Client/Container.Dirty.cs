using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>Type1 dirty-page tracking (<c>VFIO_IOMMU_DIRTY_PAGES</c>, and UNMAP_DMA with GET_DIRTY_BITMAP). The
/// bitmap the kernel writes lives in the process's memory: the client maps a scratch buffer for it, reads it
/// back and unmaps it.</summary>
public sealed partial class Container
{
    /// <summary>DIRTY_PAGES START: begin tracking every mapping.</summary>
    public void StartDirtyTracking() => DirtyPagesFlagOnly(DirtyPagesFlags.Start, "dirty_pages start");

    /// <summary>DIRTY_PAGES STOP.</summary>
    public void StopDirtyTracking() => DirtyPagesFlagOnly(DirtyPagesFlags.Stop, "dirty_pages stop");

    /// <summary>DIRTY_PAGES GET_BITMAP of [<paramref name="iova"/>, +<paramref name="size"/>) at
    /// <paramref name="pageSize"/> granularity (the range must match whole mappings).</summary>
    public DirtyBitmap GetDirtyBitmap(ulong iova, ulong size, ulong pageSize)
    {
        ulong bytes = DirtyBitmap.BytesFor(size, pageSize);
        return WithScratch(bytes, scratch =>
        {
            byte[] arg = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
            new VfioIommuType1DirtyBitmap { Argsz = (uint)arg.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(arg);
            new VfioIommuType1DirtyBitmapGet
            {
                Iova = iova,
                Size = size,
                Bitmap = new VfioBitmap { Pgsize = pageSize, Size = bytes, Data = scratch },
            }.Write(arg.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
            Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuDirtyPages, arg,
                () => $"dirty_pages get_bitmap fd {Fd} iova 0x{iova:x} size 0x{size:x} pgsize 0x{pageSize:x}");
            return ReadBitmap(scratch, iova, size, pageSize, bytes);
        });
    }

    /// <summary>UNMAP_DMA with GET_DIRTY_BITMAP: unmaps the range and returns the bytes unmapped and the pages dirtied
    /// since the last report.</summary>
    public (ulong Unmapped, DirtyBitmap Bitmap) UnmapDmaWithDirtyBitmap(ulong iova, ulong size, ulong pageSize)
    {
        ulong bytes = DirtyBitmap.BytesFor(size, pageSize);
        return WithScratch(bytes, scratch =>
        {
            byte[] arg = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
            new VfioIommuType1DmaUnmap { Argsz = (uint)arg.Length, Flags = DmaUnmapFlags.GetDirtyBitmap, Iova = iova, Size = size }.Write(arg);
            new VfioBitmap { Pgsize = pageSize, Size = bytes, Data = scratch }.Write(arg.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
            Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuUnmapDma, arg,
                () => $"unmap_dma get_dirty_bitmap fd {Fd} iova 0x{iova:x} size 0x{size:x} pgsize 0x{pageSize:x}");
            return (ReadU64(arg, VfioIommuType1DmaUnmap.Offsets.Size), ReadBitmap(scratch, iova, size, pageSize, bytes));
        });
    }

    private void DirtyPagesFlagOnly(DirtyPagesFlags flag, string what)
    {
        byte[] arg = Struct(new VfioIommuType1DirtyBitmap { Argsz = VfioIommuType1DirtyBitmap.SizeOf, Flags = flag });
        Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuDirtyPages, arg, () => $"{what} fd {Fd}");
    }

    /// <summary>Maps an anonymous read-write scratch buffer of <paramref name="bytes"/> in the process, runs
    /// <paramref name="body"/> with its address and unmaps it (also when the body throws).</summary>
    private T WithScratch<T>(ulong bytes, Func<ulong, T> body)
    {
        ulong length = Math.Max(bytes, 1);
        long address = Syscall.Check(
            Sys.Mmap(0, length, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0),
            () => $"mmap scratch bitmap 0x{length:x} bytes");
        try
        {
            return body((ulong)address);
        }
        finally
        {
            Sys.Munmap((ulong)address, length);
        }
    }

    private DirtyBitmap ReadBitmap(ulong address, ulong iova, ulong size, ulong pageSize, ulong bytes)
    {
        byte[] raw = new byte[bytes];
        Syscall.Check(Sys.ReadMemory(address, raw), () => $"read bitmap at 0x{address:x}");
        ulong[] words = new ulong[raw.Length / 8];
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * 8));
        }
        return new DirtyBitmap(iova, size, pageSize, words);
    }
}
