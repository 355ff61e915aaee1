using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_EEH_PE_OP</c>: one EEH operation on the container's partitionable endpoint.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_eeh_pe_op</c> of <c>linux/vfio.h</c>: 40 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioEehPeOp : IAbiStruct<VfioEehPeOp>
{
    /// <summary><c>sizeof(struct vfio_eeh_pe_op)</c> on x86-64.</summary>
    public const int SizeOf = 40;

    /// <summary>The kernel's <c>minsz</c> (end of <c>op</c>).</summary>
    public const int MinSize = 12;

    /// <summary>The <c>argsz</c> INJECT_ERR requires (end of <c>err.mask</c>).</summary>
    public const int InjectErrMinSize = 40;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>op</c>: the operation.</summary>
    public EehPeOperation Op;

    /// <summary><c>err</c>: for INJECT_ERR, the error (a union member in C).</summary>
    public VfioEehPeErr Err;

    static int IAbiStruct<VfioEehPeOp>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_eeh_pe_op", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("op", Offsets.Op),
        new("err", Offsets.Err),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioEehPeOp value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioEehPeOp value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian, padding as zero.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        destination[..SizeOf].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Op..], (uint)Op);
        Err.Write(destination[Offsets.Err..]);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioEehPeOp IAbiStruct<VfioEehPeOp>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Op = (EehPeOperation)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Op..]),
        Err = AbiStruct.ReadUnchecked<VfioEehPeErr>(source[Offsets.Err..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_eeh_pe_op</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_eeh_pe_op, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_eeh_pe_op, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_eeh_pe_op, op)</c>.</summary>
        public const int Op = 8;

        /// <summary><c>offsetof(struct vfio_eeh_pe_op, err)</c>.</summary>
        public const int Err = 16;
    }
}
