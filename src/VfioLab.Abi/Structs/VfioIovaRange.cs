using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// One valid IOVA range, an element of <see cref="VfioIommuType1InfoCapIovaRange"/>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iova_range</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIovaRange : IAbiStruct<VfioIovaRange>
{
    /// <summary><c>sizeof(struct vfio_iova_range)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>start</c>: first valid IOVA.</summary>
    public ulong Start;

    /// <summary><c>end</c>: last valid IOVA (inclusive).</summary>
    public ulong End;

    static int IAbiStruct<VfioIovaRange>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iova_range", SizeOf,
    [
        new("start", Offsets.Start),
        new("end", Offsets.End),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIovaRange value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIovaRange value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Start..], Start);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.End..], End);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIovaRange IAbiStruct<VfioIovaRange>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Start = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Start..]),
        End = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.End..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iova_range</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iova_range, start)</c>.</summary>
        public const int Start = 0;

        /// <summary><c>offsetof(struct vfio_iova_range, end)</c>.</summary>
        public const int End = 8;
    }
}
