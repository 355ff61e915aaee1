using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Region capability <see cref="RegionInfoCapId.Type"/>: a device-specific region's type and subtype.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_region_info_cap_type</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioRegionInfoCapType : IAbiStruct<VfioRegionInfoCapType>
{
    /// <summary><c>sizeof(struct vfio_region_info_cap_type)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>type</c>: region type, global per bus driver.</summary>
    public uint Type;

    /// <summary><c>subtype</c>: type-specific subtype.</summary>
    public uint Subtype;

    static int IAbiStruct<VfioRegionInfoCapType>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_region_info_cap_type", SizeOf,
    [
        new("header", Offsets.Header),
        new("type", Offsets.Type),
        new("subtype", Offsets.Subtype),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioRegionInfoCapType value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioRegionInfoCapType value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Type..], Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Subtype..], Subtype);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioRegionInfoCapType IAbiStruct<VfioRegionInfoCapType>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        Type = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Type..]),
        Subtype = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Subtype..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_region_info_cap_type</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_region_info_cap_type, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_region_info_cap_type, type)</c>.</summary>
        public const int Type = 8;

        /// <summary><c>offsetof(struct vfio_region_info_cap_type, subtype)</c>.</summary>
        public const int Subtype = 12;
    }
}
