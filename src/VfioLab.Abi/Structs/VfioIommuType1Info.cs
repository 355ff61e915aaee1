using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_GET_INFO</c> on a type1 container: supported IOMMU page sizes and a capability chain.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_info</c> of <c>linux/vfio.h</c>: 24 bytes on x86-64, little-endian.
/// Bytes 20..23 are implicit padding in the Linux 6.1 header and an explicit <c>__u32 pad</c> since v6.6;
/// the size is 24 bytes either way. The kernel copies back <c>min(argsz, 24)</c> bytes.
/// </remarks>
public struct VfioIommuType1Info : IAbiStruct<VfioIommuType1Info>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_info)</c> on x86-64.</summary>
    public const int SizeOf = 24;

    /// <summary>The kernel's <c>minsz</c> (end of <c>iova_pgsizes</c>): a smaller <c>argsz</c> is EINVAL.</summary>
    public const int MinSize = 16;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct. On return, the size needed for the struct and its whole capability chain.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: PGSIZES, and CAPS when a chain exists.</summary>
    public IommuInfoFlags Flags;

    /// <summary><c>iova_pgsizes</c>: output: bitmap of supported IOMMU page sizes.</summary>
    public ulong IovaPgsizes;

    /// <summary><c>cap_offset</c>: output: offset of the first capability, or 0 when the buffer was too small for the chain.</summary>
    public uint CapOffset;

    static int IAbiStruct<VfioIommuType1Info>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_info", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("iova_pgsizes", Offsets.IovaPgsizes),
        new("cap_offset", Offsets.CapOffset),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1Info value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1Info value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian, padding as zero.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        destination[..SizeOf].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.IovaPgsizes..], IovaPgsizes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.CapOffset..], CapOffset);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1Info IAbiStruct<VfioIommuType1Info>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (IommuInfoFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        IovaPgsizes = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.IovaPgsizes..]),
        CapOffset = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.CapOffset..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_info, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info, iova_pgsizes)</c>.</summary>
        public const int IovaPgsizes = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info, cap_offset)</c>.</summary>
        public const int CapOffset = 16;
    }
}
