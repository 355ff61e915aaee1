using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_DEVICE_GET_IRQ_INFO</c>: how one interrupt index signals and how many vectors it has.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_irq_info</c> of <c>linux/vfio.h</c>: 16 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIrqInfo : IAbiStruct<VfioIrqInfo>
{
    /// <summary><c>sizeof(struct vfio_irq_info)</c> on x86-64.</summary>
    public const int SizeOf = 16;

    /// <summary>The kernel's <c>minsz</c> (end of <c>count</c>).</summary>
    public const int MinSize = 16;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: eventfd/mask/automask/noresize support.</summary>
    public IrqInfoFlags Flags;

    /// <summary><c>index</c>: input: irq index (for vfio-pci see <see cref="VfioPciIrqIndex"/>).</summary>
    public uint Index;

    /// <summary><c>count</c>: output: number of vectors in the index; 0 if unimplemented.</summary>
    public uint Count;

    static int IAbiStruct<VfioIrqInfo>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_irq_info", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("index", Offsets.Index),
        new("count", Offsets.Count),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIrqInfo value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIrqInfo value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Index..], Index);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Count..], Count);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIrqInfo IAbiStruct<VfioIrqInfo>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (IrqInfoFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Index = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Index..]),
        Count = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Count..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_irq_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_irq_info, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_irq_info, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_irq_info, index)</c>.</summary>
        public const int Index = 8;

        /// <summary><c>offsetof(struct vfio_irq_info, count)</c>.</summary>
        public const int Count = 12;
    }
}
