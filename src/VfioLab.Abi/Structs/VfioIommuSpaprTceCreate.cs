using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_SPAPR_TCE_CREATE</c>: create a dynamic DMA window and return its bus address.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_spapr_tce_create</c> of <c>linux/vfio.h</c>: 40 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuSpaprTceCreate : IAbiStruct<VfioIommuSpaprTceCreate>
{
    /// <summary><c>sizeof(struct vfio_iommu_spapr_tce_create)</c> on x86-64.</summary>
    public const int SizeOf = 40;

    /// <summary>The kernel's <c>minsz</c> (end of <c>start_addr</c>).</summary>
    public const int MinSize = 40;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>page_shift</c>: input: log2 of the TCE page size.</summary>
    public uint PageShift;

    /// <summary><c>__resv1</c>: reserved.</summary>
    public uint Resv1;

    /// <summary><c>window_size</c>: input: window size in bytes.</summary>
    public ulong WindowSize;

    /// <summary><c>levels</c>: input: number of TCE table levels.</summary>
    public uint Levels;

    /// <summary><c>__resv2</c>: reserved.</summary>
    public uint Resv2;

    /// <summary><c>start_addr</c>: output: PCI bus address of the new window.</summary>
    public ulong StartAddr;

    static int IAbiStruct<VfioIommuSpaprTceCreate>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_spapr_tce_create", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("page_shift", Offsets.PageShift),
        new("__resv1", Offsets.Resv1),
        new("window_size", Offsets.WindowSize),
        new("levels", Offsets.Levels),
        new("__resv2", Offsets.Resv2),
        new("start_addr", Offsets.StartAddr),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuSpaprTceCreate value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuSpaprTceCreate value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.PageShift..], PageShift);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Resv1..], Resv1);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.WindowSize..], WindowSize);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Levels..], Levels);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Resv2..], Resv2);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.StartAddr..], StartAddr);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuSpaprTceCreate IAbiStruct<VfioIommuSpaprTceCreate>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        PageShift = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.PageShift..]),
        Resv1 = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Resv1..]),
        WindowSize = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.WindowSize..]),
        Levels = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Levels..]),
        Resv2 = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Resv2..]),
        StartAddr = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.StartAddr..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_spapr_tce_create</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, page_shift)</c>.</summary>
        public const int PageShift = 8;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, __resv1)</c>.</summary>
        public const int Resv1 = 12;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, window_size)</c>.</summary>
        public const int WindowSize = 16;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, levels)</c>.</summary>
        public const int Levels = 24;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, __resv2)</c>.</summary>
        public const int Resv2 = 28;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_tce_create, start_addr)</c>.</summary>
        public const int StartAddr = 32;
    }
}
