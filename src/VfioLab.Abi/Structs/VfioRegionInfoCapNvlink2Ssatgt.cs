using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Region capability <see cref="RegionInfoCapId.Nvlink2Ssatgt"/> (deprecated, no longer provided): an NVLink2 GPU RAM system address.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_region_info_cap_nvlink2_ssatgt</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioRegionInfoCapNvlink2Ssatgt : IAbiStruct<VfioRegionInfoCapNvlink2Ssatgt>
{
    /// <summary><c>sizeof(struct vfio_region_info_cap_nvlink2_ssatgt)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>tgt</c>: compressed real address of the GPU RAM.</summary>
    public ulong Tgt;

    static int IAbiStruct<VfioRegionInfoCapNvlink2Ssatgt>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_region_info_cap_nvlink2_ssatgt", SizeOf,
    [
        new("header", Offsets.Header),
        new("tgt", Offsets.Tgt),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioRegionInfoCapNvlink2Ssatgt value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioRegionInfoCapNvlink2Ssatgt value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Tgt..], Tgt);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioRegionInfoCapNvlink2Ssatgt IAbiStruct<VfioRegionInfoCapNvlink2Ssatgt>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        Tgt = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Tgt..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_region_info_cap_nvlink2_ssatgt</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_region_info_cap_nvlink2_ssatgt, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_region_info_cap_nvlink2_ssatgt, tgt)</c>.</summary>
        public const int Tgt = 8;
    }
}
