using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// One mmap-able area of a region, an element of <see cref="VfioRegionInfoCapSparseMmap"/>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_region_sparse_mmap_area</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioRegionSparseMmapArea : IAbiStruct<VfioRegionSparseMmapArea>
{
    /// <summary><c>sizeof(struct vfio_region_sparse_mmap_area)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>offset</c>: offset of the area within the region.</summary>
    public ulong Offset;

    /// <summary><c>size</c>: size of the area in bytes.</summary>
    public ulong Size;

    static int IAbiStruct<VfioRegionSparseMmapArea>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_region_sparse_mmap_area", SizeOf,
    [
        new("offset", Offsets.Offset),
        new("size", Offsets.Size),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioRegionSparseMmapArea value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioRegionSparseMmapArea value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Offset..], Offset);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioRegionSparseMmapArea IAbiStruct<VfioRegionSparseMmapArea>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Offset = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Offset..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_region_sparse_mmap_area</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_region_sparse_mmap_area, offset)</c>.</summary>
        public const int Offset = 0;

        /// <summary><c>offsetof(struct vfio_region_sparse_mmap_area, size)</c>.</summary>
        public const int Size = 8;
    }
}
