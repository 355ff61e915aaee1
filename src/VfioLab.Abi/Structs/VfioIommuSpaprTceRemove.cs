using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_SPAPR_TCE_REMOVE</c>: remove the dynamic DMA window that starts at <c>start_addr</c>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_spapr_tce_remove</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuSpaprTceRemove : IAbiStruct<VfioIommuSpaprTceRemove>
{
    /// <summary><c>sizeof(struct vfio_iommu_spapr_tce_remove)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary>The kernel's <c>minsz</c> (end of <c>start_addr</c>).</summary>
    public const int MinSize = 16;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>start_addr</c>: PCI bus address of the window.</summary>
    public ulong StartAddr;

    static int IAbiStruct<VfioIommuSpaprTceRemove>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_spapr_tce_remove", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("start_addr", Offsets.StartAddr),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuSpaprTceRemove value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuSpaprTceRemove value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.StartAddr..], StartAddr);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuSpaprTceRemove IAbiStruct<VfioIommuSpaprTceRemove>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        StartAddr = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.StartAddr..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_spapr_tce_remove</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_remove, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_remove, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_remove, start_addr)</c>.</summary>
        public const int StartAddr = 8;
    }
}
