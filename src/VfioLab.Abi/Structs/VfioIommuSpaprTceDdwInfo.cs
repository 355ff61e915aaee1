using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Dynamic DMA window limits of an sPAPR TCE container, part of <see cref="VfioIommuSpaprTceInfo"/>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_spapr_tce_ddw_info</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuSpaprTceDdwInfo : IAbiStruct<VfioIommuSpaprTceDdwInfo>
{
    /// <summary><c>sizeof(struct vfio_iommu_spapr_tce_ddw_info)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary><c>pgsizes</c>: bitmap of supported TCE page sizes.</summary>
    public ulong Pgsizes;

    /// <summary><c>max_dynamic_windows_supported</c>: how many windows may be created.</summary>
    public uint MaxDynamicWindowsSupported;

    /// <summary><c>levels</c>: maximum number of levels of a TCE table.</summary>
    public uint Levels;

    static int IAbiStruct<VfioIommuSpaprTceDdwInfo>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_spapr_tce_ddw_info", SizeOf,
    [
        new("pgsizes", Offsets.Pgsizes),
        new("max_dynamic_windows_supported", Offsets.MaxDynamicWindowsSupported),
        new("levels", Offsets.Levels),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuSpaprTceDdwInfo value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuSpaprTceDdwInfo value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Pgsizes..], Pgsizes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.MaxDynamicWindowsSupported..], MaxDynamicWindowsSupported);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Levels..], Levels);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuSpaprTceDdwInfo IAbiStruct<VfioIommuSpaprTceDdwInfo>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Pgsizes = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Pgsizes..]),
        MaxDynamicWindowsSupported = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.MaxDynamicWindowsSupported..]),
        Levels = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Levels..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_spapr_tce_ddw_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_ddw_info, pgsizes)</c>.</summary>
        public const int Pgsizes = 0;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_ddw_info, max_dynamic_windows_supported)</c>.</summary>
        public const int MaxDynamicWindowsSupported = 8;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_ddw_info, levels)</c>.</summary>
        public const int Levels = 12;
    }
}
