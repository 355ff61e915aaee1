using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Header of one capability in an info capability chain: its id, its version, and the offset of the next one.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_info_cap_header</c> of <c>linux/vfio.h</c>: 8 bytes on x86-64, little-endian.
/// Offsets in a chain count from the start of the user buffer passed to the GET_INFO ioctl.
/// </remarks>
public struct VfioInfoCapHeader : IAbiStruct<VfioInfoCapHeader>
{
    /// <summary><c>sizeof(struct vfio_info_cap_header)</c> on x86-64.</summary>
    public const int SizeOf = 8;

    /// <summary><c>id</c>: capability id, interpreted by the struct that holds the chain (<see cref="IommuType1InfoCapId"/>, <see cref="RegionInfoCapId"/>, <see cref="DeviceInfoCapId"/>).</summary>
    public ushort Id;

    /// <summary><c>version</c>: version of that capability's layout.</summary>
    public ushort Version;

    /// <summary><c>next</c>: offset of the next capability from the start of the info buffer; 0 ends the chain.</summary>
    public uint Next;

    static int IAbiStruct<VfioInfoCapHeader>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_info_cap_header", SizeOf,
    [
        new("id", Offsets.Id),
        new("version", Offsets.Version),
        new("next", Offsets.Next),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioInfoCapHeader value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioInfoCapHeader value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[Offsets.Id..], Id);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[Offsets.Version..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Next..], Next);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioInfoCapHeader IAbiStruct<VfioInfoCapHeader>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Id = BinaryPrimitives.ReadUInt16LittleEndian(source[Offsets.Id..]),
        Version = BinaryPrimitives.ReadUInt16LittleEndian(source[Offsets.Version..]),
        Next = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Next..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_info_cap_header</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_info_cap_header, id)</c>.</summary>
        public const int Id = 0;

        /// <summary><c>offsetof(struct vfio_info_cap_header, version)</c>.</summary>
        public const int Version = 2;

        /// <summary><c>offsetof(struct vfio_info_cap_header, next)</c>.</summary>
        public const int Next = 4;
    }
}
