using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Type1 info capability <see cref="IommuType1InfoCapId.IovaRange"/>: the IOVA ranges a mapping may use.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_info_cap_iova_range</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuType1InfoCapIovaRange : IAbiStruct<VfioIommuType1InfoCapIovaRange>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_info_cap_iova_range)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>nr_iovas</c>: number of <see cref="VfioIovaRange"/> elements that follow.</summary>
    public uint NrIovas;

    /// <summary><c>reserved</c>: reserved, zero.</summary>
    public uint Reserved;

    static int IAbiStruct<VfioIommuType1InfoCapIovaRange>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_info_cap_iova_range", SizeOf,
    [
        new("header", Offsets.Header),
        new("nr_iovas", Offsets.NrIovas),
        new("reserved", Offsets.Reserved),
        new("iova_ranges", Offsets.IovaRanges),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1InfoCapIovaRange value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1InfoCapIovaRange value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.NrIovas..], NrIovas);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Reserved..], Reserved);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1InfoCapIovaRange IAbiStruct<VfioIommuType1InfoCapIovaRange>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        NrIovas = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.NrIovas..]),
        Reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Reserved..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_info_cap_iova_range</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_iova_range, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas)</c>.</summary>
        public const int NrIovas = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_iova_range, reserved)</c>.</summary>
        public const int Reserved = 12;

        /// <summary><c>iova_ranges[]</c>: the valid ranges, ascending (flexible array; its elements follow the fixed part).</summary>
        public const int IovaRanges = 16;
    }
}
