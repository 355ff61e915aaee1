using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Type1 info capability <see cref="IommuType1InfoCapId.Migration"/>: dirty-tracking page sizes and bitmap limit.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_type1_info_cap_migration</c> of <c>linux/vfio.h</c>: 32 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuType1InfoCapMigration : IAbiStruct<VfioIommuType1InfoCapMigration>
{
    /// <summary><c>sizeof(struct vfio_iommu_type1_info_cap_migration)</c> on x86-64.</summary>
    public const int SizeOf = 32;

    /// <summary><c>header</c>: capability header.</summary>
    public VfioInfoCapHeader Header;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>pgsize_bitmap</c>: page sizes supported for dirty bitmaps (the minimum IOMMU page size).</summary>
    public ulong PgsizeBitmap;

    /// <summary><c>max_dirty_bitmap_size</c>: largest dirty bitmap accepted, in bytes.</summary>
    public ulong MaxDirtyBitmapSize;

    static int IAbiStruct<VfioIommuType1InfoCapMigration>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_type1_info_cap_migration", SizeOf,
    [
        new("header", Offsets.Header),
        new("flags", Offsets.Flags),
        new("pgsize_bitmap", Offsets.PgsizeBitmap),
        new("max_dirty_bitmap_size", Offsets.MaxDirtyBitmapSize),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuType1InfoCapMigration value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuType1InfoCapMigration value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian, padding as zero.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        destination[..SizeOf].Clear();
        Header.Write(destination[Offsets.Header..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.PgsizeBitmap..], PgsizeBitmap);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.MaxDirtyBitmapSize..], MaxDirtyBitmapSize);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuType1InfoCapMigration IAbiStruct<VfioIommuType1InfoCapMigration>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Header = AbiStruct.ReadUnchecked<VfioInfoCapHeader>(source[Offsets.Header..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        PgsizeBitmap = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.PgsizeBitmap..]),
        MaxDirtyBitmapSize = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.MaxDirtyBitmapSize..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_type1_info_cap_migration</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_migration, header)</c>.</summary>
        public const int Header = 0;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_migration, flags)</c>.</summary>
        public const int Flags = 8;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_migration, pgsize_bitmap)</c>.</summary>
        public const int PgsizeBitmap = 16;

        /// <summary><c>offsetof(struct vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size)</c>.</summary>
        public const int MaxDirtyBitmapSize = 24;
    }
}
