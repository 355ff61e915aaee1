using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_UNMAP_DMA</c>: unmap (or, with VADDR, invalidate the vaddr of) the mappings in a range.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_dma_unmap</c> of <c>linux/vfio.h</c>: 24 bytes on x86-64, little-endian.
/// The 24-byte header is copied back on success.
/// </remarks>
public struct VfioIommuType1DmaUnmap : IAbiStruct<VfioIommuType1DmaUnmap>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_dma_unmap)</c> on x86-64.</summary>
    public const int SizeOf = 24;

    /// <summary>The kernel's <c>minsz</c> (end of <c>size</c>).</summary>
    public const int MinSize = 24;

    /// <summary>The <c>argsz</c> required with GET_DIRTY_BITMAP: header plus a <see cref="VfioBitmap"/>.</summary>
    public const int MinSizeWithBitmap = 48;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: GET_DIRTY_BITMAP, ALL or VADDR.</summary>
    public DmaUnmapFlags Flags;

    /// <summary><c>iova</c>: start of the range; 0 with ALL.</summary>
    public ulong Iova;

    /// <summary><c>size</c>: input: length of the range (0 with ALL); output: bytes unmapped.</summary>
    public ulong Size;

    static int IAbiStruct<VfioIommuType1DmaUnmap>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_dma_unmap", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("iova", Offsets.Iova),
        new("size", Offsets.Size),
        new("data", Offsets.Data),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1DmaUnmap value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1DmaUnmap value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Iova..], Iova);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1DmaUnmap IAbiStruct<VfioIommuType1DmaUnmap>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (DmaUnmapFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Iova = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Iova..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_dma_unmap</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_unmap, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_unmap, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_unmap, iova)</c>.</summary>
        public const int Iova = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_unmap, size)</c>.</summary>
        public const int Size = 16;

        /// <summary><c>data[]</c>: with GET_DIRTY_BITMAP, a <see cref="VfioBitmap"/> (flexible array; its elements follow the fixed part).</summary>
        public const int Data = 24;
    }
}
