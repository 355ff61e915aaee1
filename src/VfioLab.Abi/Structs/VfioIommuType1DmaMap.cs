using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_MAP_DMA</c>: map process memory at <c>vaddr</c> to <c>iova</c> for device DMA.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_dma_map</c> of <c>linux/vfio.h</c>: 32 bytes on x86-64, little-endian.
/// Nothing is copied back.
/// </remarks>
public struct VfioIommuType1DmaMap : IAbiStruct<VfioIommuType1DmaMap>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_dma_map)</c> on x86-64.</summary>
    public const int SizeOf = 32;

    /// <summary>The kernel's <c>minsz</c> (end of <c>size</c>).</summary>
    public const int MinSize = 32;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: READ and/or WRITE, or VADDR alone to re-supply the vaddr of an invalidated mapping.</summary>
    public DmaMapFlags Flags;

    /// <summary><c>vaddr</c>: process virtual address of the memory.</summary>
    public ulong Vaddr;

    /// <summary><c>iova</c>: IO virtual address the device will use.</summary>
    public ulong Iova;

    /// <summary><c>size</c>: length in bytes.</summary>
    public ulong Size;

    static int IAbiStruct<VfioIommuType1DmaMap>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_dma_map", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("vaddr", Offsets.Vaddr),
        new("iova", Offsets.Iova),
        new("size", Offsets.Size),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1DmaMap value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1DmaMap value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Vaddr..], Vaddr);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Iova..], Iova);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1DmaMap IAbiStruct<VfioIommuType1DmaMap>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (DmaMapFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Vaddr = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Vaddr..]),
        Iova = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Iova..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_dma_map</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_map, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_map, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_map, vaddr)</c>.</summary>
        public const int Vaddr = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_map, iova)</c>.</summary>
        public const int Iova = 16;

        /// <summary><c>offsetof(struct vfio_iommu_type1_dma_map, size)</c>.</summary>
        public const int Size = 24;
    }
}
