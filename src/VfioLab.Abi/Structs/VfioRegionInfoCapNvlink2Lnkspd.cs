using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Region capability <see cref="RegionInfoCapId.Nvlink2Lnkspd"/> (deprecated, no longer provided): an NVLink2 link speed.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_region_info_cap_nvlink2_lnkspd</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioRegionInfoCapNvlink2Lnkspd : IAbiStruct<VfioRegionInfoCapNvlink2Lnkspd>
{
    /// <summary><c>sizeof(struct vfio_region_info_cap_nvlink2_lnkspd)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>link_speed</c>: link speed from the device tree.</summary>
    public uint LinkSpeed;

    /// <summary><c>__pad</c>: padding.</summary>
    public uint Pad;

    static int IAbiStruct<VfioRegionInfoCapNvlink2Lnkspd>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_region_info_cap_nvlink2_lnkspd", SizeOf,
    [
        new("header", Offsets.Header),
        new("link_speed", Offsets.LinkSpeed),
        new("__pad", Offsets.Pad),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioRegionInfoCapNvlink2Lnkspd value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioRegionInfoCapNvlink2Lnkspd value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.LinkSpeed..], LinkSpeed);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Pad..], Pad);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioRegionInfoCapNvlink2Lnkspd IAbiStruct<VfioRegionInfoCapNvlink2Lnkspd>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        LinkSpeed = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.LinkSpeed..]),
        Pad = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Pad..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_region_info_cap_nvlink2_lnkspd</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_region_info_cap_nvlink2_lnkspd, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_region_info_cap_nvlink2_lnkspd, link_speed)</c>.</summary>
        public const int LinkSpeed = 8;

        /// <summary><c>offsetof(struct vfio_region_info_cap_nvlink2_lnkspd, __pad)</c>.</summary>
        public const int Pad = 12;
    }
}
