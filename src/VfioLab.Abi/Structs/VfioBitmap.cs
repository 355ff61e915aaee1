using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// A user dirty bitmap: one bit per page of <c>pgsize</c>, stored in process memory at <c>data</c>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_bitmap</c> of <c>linux/vfio.h</c>: 24 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioBitmap : IAbiStruct<VfioBitmap>
{
    /// <summary><c>sizeof(struct vfio_bitmap)</c> on x86-64.</summary>
    public const int SizeOf = 24;

    /// <summary><c>pgsize</c>: page size one bit stands for, in bytes.</summary>
    public ulong Pgsize;

    /// <summary><c>size</c>: size of the bitmap memory in bytes.</summary>
    public ulong Size;

    /// <summary><c>data</c>: process virtual address of the bitmap (a <c>__u64 *</c> in C).</summary>
    public ulong Data;

    static int IAbiStruct<VfioBitmap>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_bitmap", SizeOf,
    [
        new("pgsize", Offsets.Pgsize),
        new("size", Offsets.Size),
        new("data", Offsets.Data),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioBitmap value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioBitmap value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Pgsize..], Pgsize);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Data..], Data);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioBitmap IAbiStruct<VfioBitmap>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Pgsize = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Pgsize..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
        Data = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Data..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_bitmap</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_bitmap, pgsize)</c>.</summary>
        public const int Pgsize = 0;

        /// <summary><c>offsetof(struct vfio_bitmap, size)</c>.</summary>
        public const int Size = 8;

        /// <summary><c>offsetof(struct vfio_bitmap, data)</c>.</summary>
        public const int Data = 16;
    }
}
