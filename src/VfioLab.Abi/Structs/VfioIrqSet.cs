using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_DEVICE_SET_IRQS</c>: an action on a range of vectors of one irq index, with per-vector data after it.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_irq_set</c> of <c>linux/vfio.h</c>: 20 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioIrqSet : IAbiStruct<VfioIrqSet>
{
    /// <summary><c>sizeof(struct vfio_irq_set)</c> on x86-64.</summary>
    public const int SizeOf = 20;

    /// <summary>The kernel's <c>minsz</c> (end of <c>count</c>).</summary>
    public const int MinSize = 20;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: one DATA_* and one ACTION_* flag.</summary>
    public IrqSetFlags Flags;

    /// <summary><c>index</c>: irq index.</summary>
    public uint Index;

    /// <summary><c>start</c>: first vector.</summary>
    public uint Start;

    /// <summary><c>count</c>: number of vectors.</summary>
    public uint Count;

    static int IAbiStruct<VfioIrqSet>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_irq_set", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("index", Offsets.Index),
        new("start", Offsets.Start),
        new("count", Offsets.Count),
        new("data", Offsets.Data),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioIrqSet value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioIrqSet value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Index..], Index);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Start..], Start);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Count..], Count);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioIrqSet IAbiStruct<VfioIrqSet>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (IrqSetFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Index = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Index..]),
        Start = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Start..]),
        Count = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Count..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_irq_set</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_irq_set, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_irq_set, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_irq_set, index)</c>.</summary>
        public const int Index = 8;

        /// <summary><c>offsetof(struct vfio_irq_set, start)</c>.</summary>
        public const int Start = 12;

        /// <summary><c>offsetof(struct vfio_irq_set, count)</c>.</summary>
        public const int Count = 16;

        /// <summary><c>data[]</c>: per-vector data: nothing, one byte (bool) or one s32 eventfd per vector (flexible array; its elements follow the fixed part).</summary>
        public const int Data = 20;
    }
}
