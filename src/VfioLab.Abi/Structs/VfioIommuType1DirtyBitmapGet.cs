using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Payload of <c>VFIO_IOMMU_DIRTY_PAGES</c> with GET_BITMAP: the IOVA range and the bitmap to fill.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_dirty_bitmap_get</c> of <c>linux/vfio.h</c>: 40 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuType1DirtyBitmapGet : IAbiStruct<VfioIommuType1DirtyBitmapGet>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_dirty_bitmap_get)</c> on x86-64.</summary>
    public const int SizeOf = 40;

    /// <summary><c>iova</c>: start of the range.</summary>
    public ulong Iova;

    /// <summary><c>size</c>: length of the range in bytes.</summary>
    public ulong Size;

    /// <summary><c>bitmap</c>: where to write the dirty bits.</summary>
    public VfioBitmap Bitmap;

    static int IAbiStruct<VfioIommuType1DirtyBitmapGet>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_dirty_bitmap_get", SizeOf,
    [
        new("iova", Offsets.Iova),
        new("size", Offsets.Size),
        new("bitmap", Offsets.Bitmap),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1DirtyBitmapGet value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1DirtyBitmapGet value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Iova..], Iova);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
        Bitmap.Write(destination[Offsets.Bitmap..]);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1DirtyBitmapGet IAbiStruct<VfioIommuType1DirtyBitmapGet>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Iova = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Iova..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
        Bitmap = AbiStruct.ReadUnchecked<VfioBitmap>(source[Offsets.Bitmap..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_dirty_bitmap_get</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_dirty_bitmap_get, iova)</c>.</summary>
        public const int Iova = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dirty_bitmap_get, size)</c>.</summary>
        public const int Size = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dirty_bitmap_get, bitmap)</c>.</summary>
        public const int Bitmap = 16;
    }
}
