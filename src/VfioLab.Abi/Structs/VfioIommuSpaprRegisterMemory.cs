using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_IOMMU_SPAPR_REGISTER_MEMORY</c> and <c>..._UNREGISTER_MEMORY</c>: pre-register (pin and account) process memory for TCE mappings.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_iommu_spapr_register_memory</c> of <c>linux/vfio.h</c>: 24 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIommuSpaprRegisterMemory : IAbiStruct<VfioIommuSpaprRegisterMemory>
{
    /// <summary><c>sizeof(struct vfio_iommu_spapr_register_memory)</c> on x86-64.</summary>
    public const int SizeOf = 24;

    /// <summary>The kernel's <c>minsz</c> (end of <c>size</c>).</summary>
    public const int MinSize = 24;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>vaddr</c>: process virtual address.</summary>
    public ulong Vaddr;

    /// <summary><c>size</c>: length in bytes.</summary>
    public ulong Size;

    static int IAbiStruct<VfioIommuSpaprRegisterMemory>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_iommu_spapr_register_memory", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("vaddr", Offsets.Vaddr),
        new("size", Offsets.Size),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIommuSpaprRegisterMemory value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIommuSpaprRegisterMemory value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Vaddr..], Vaddr);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Size..], Size);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIommuSpaprRegisterMemory IAbiStruct<VfioIommuSpaprRegisterMemory>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Vaddr = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Vaddr..]),
        Size = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Size..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_iommu_spapr_register_memory</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_iommu_spapr_register_memory, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_register_memory, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_register_memory, vaddr)</c>.</summary>
        public const int Vaddr = 8;

        /// <summary><c>offsetof(struct vfio_iommu_spapr_register_memory, size)</c>.</summary>
        public const int Size = 16;
    }
}
