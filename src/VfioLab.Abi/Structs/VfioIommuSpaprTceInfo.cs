using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_SPAPR_TCE_GET_INFO</c>: the default 32-bit DMA window and dynamic window limits.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_spapr_tce_info</c> of <c>linux/vfio.h</c>: 32 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuSpaprTceInfo : IAbiStruct<VfioIommuSpaprTceInfo>
{
    /// <summary><c>sizeof(struct vfio_iommu_spapr_tce_info)</c> on x86-64.</summary>
    public const int SizeOf = 32;

    /// <summary>The kernel's <c>minsz</c> (end of <c>dma32_window_size</c>).</summary>
    public const int MinSize = 16;

    /// <summary>The <c>argsz</c> from which the kernel also fills <c>ddw</c> (end of <c>ddw.levels</c>).</summary>
    public const int DdwMinSize = 32;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: DDW when dynamic windows are supported.</summary>
    public SpaprInfoFlags Flags;

    /// <summary><c>dma32_window_start</c>: output: PCI bus address of the 32-bit window.</summary>
    public uint Dma32WindowStart;

    /// <summary><c>dma32_window_size</c>: output: size of the 32-bit window in bytes.</summary>
    public uint Dma32WindowSize;

    /// <summary><c>ddw</c>: output: dynamic window limits, valid with DDW.</summary>
    public VfioIommuSpaprTceDdwInfo Ddw;

    static int IAbiStruct<VfioIommuSpaprTceInfo>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_spapr_tce_info", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("dma32_window_start", Offsets.Dma32WindowStart),
        new("dma32_window_size", Offsets.Dma32WindowSize),
        new("ddw", Offsets.Ddw),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuSpaprTceInfo value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuSpaprTceInfo value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Dma32WindowStart..], Dma32WindowStart);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Dma32WindowSize..], Dma32WindowSize);
        Ddw.Write(destination[Offsets.Ddw..]);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuSpaprTceInfo IAbiStruct<VfioIommuSpaprTceInfo>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (SpaprInfoFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Dma32WindowStart = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Dma32WindowStart..]),
        Dma32WindowSize = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Dma32WindowSize..]),
        Ddw = AbiStruct.ReadUnchecked<VfioIommuSpaprTceDdwInfo>(source[Offsets.Ddw..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_spapr_tce_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_info, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_info, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_info, dma32_window_start)</c>.</summary>
        public const int Dma32WindowStart = 8;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_info, dma32_window_size)</c>.</summary>
        public const int Dma32WindowSize = 12;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_info, ddw)</c>.</summary>
        public const int Ddw = 16;
    }
}
