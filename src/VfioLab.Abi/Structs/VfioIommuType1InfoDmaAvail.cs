using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Type1 info capability <see cref="IommuType1InfoCapId.DmaAvail"/>: how many more DMA mappings the container may create.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_info_dma_avail</c> of <c>linux/vfio.h</c>: 12 bytes on x86-64, little-endian.
/// 12 bytes in the struct; since v6.6 the kernel pads each capability in the chain to a multiple of 8.
/// </remarks>
public struct VfioIommuType1InfoDmaAvail : IAbiStruct<VfioIommuType1InfoDmaAvail>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_info_dma_avail)</c> on x86-64.</summary>
    public const int SizeOf = 12;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>avail</c>: remaining mappings before MAP_DMA fails with ENOSPC.</summary>
    public uint Avail;

    static int IAbiStruct<VfioIommuType1InfoDmaAvail>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_info_dma_avail", SizeOf,
    [
        new("header", Offsets.Header),
        new("avail", Offsets.Avail),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1InfoDmaAvail value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1InfoDmaAvail value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Avail..], Avail);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1InfoDmaAvail IAbiStruct<VfioIommuType1InfoDmaAvail>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        Avail = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Avail..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_info_dma_avail</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_info_dma_avail, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_dma_avail, avail)</c>.</summary>
        public const int Avail = 8;
    }
}
