using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_DEVICE_GET_REGION_INFO</c>: one region's access flags, size and offset within the device fd.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_region_info</c> of <c>linux/vfio.h</c>: 32 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioRegionInfo : IAbiStruct<VfioRegionInfo>
{
    /// <summary><c>sizeof(struct vfio_region_info)</c> on x86-64.</summary>
    public const int SizeOf = 32;

    /// <summary>The kernel's <c>minsz</c> (end of <c>offset</c>).</summary>
    public const int MinSize = 32;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: read/write/mmap support and whether caps follow.</summary>
    public RegionInfoFlags Flags;

    /// <summary><c>index</c>: input: region index (for vfio-pci see <see cref="VfioPciRegionIndex"/>).</summary>
    public uint Index;

    /// <summary><c>cap_offset</c>: output: offset of the first capability from the start of the buffer, 0 if none.</summary>
    public uint CapOffset;

    /// <summary><c>size</c>: output: region size in bytes; 0 for an unimplemented region.</summary>
    public ulong Size;

    /// <summary><c>offset</c>: output: offset of the region within the device fd, for read, write and mmap.</summary>
    public ulong Offset;

    static int IAbiStruct<VfioRegionInfo>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_region_info", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("index", Offsets.Index),
        new("cap_offset", Offsets.CapOffset),
        new("size", Offsets.Size),
        new("offset", Offsets.Offset),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioRegionInfo value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioRegionInfo value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Index..], Index);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.CapOffset..], CapOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Offset..], Offset);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioRegionInfo IAbiStruct<VfioRegionInfo>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (RegionInfoFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Index = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Index..]),
        CapOffset = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.CapOffset..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
        Offset = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Offset..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_region_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_region_info, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_region_info, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_region_info, index)</c>.</summary>
        public const int Index = 8;

        /// <summary><c>offsetof(struct vfio_region_info, cap_offset)</c>.</summary>
        public const int CapOffset = 12;

        /// <summary><c>offsetof(struct vfio_region_info, size)</c>.</summary>
        public const int Size = 16;

        /// <summary><c>offsetof(struct vfio_region_info, offset)</c>.</summary>
        public const int Offset = 24;
    }
}
