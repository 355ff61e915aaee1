using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// An error to inject into a PE, part of <see cref="VfioEehPeOp"/> for <see cref="EehPeOperation.InjectErr"/>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_eeh_pe_err</c> of <c>linux/vfio.h</c>: 24 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioEehPeErr : IAbiStruct<VfioEehPeErr>
{
    /// <summary><c>sizeof(struct vfio_eeh_pe_err)</c> on x86-64.</summary>
    public const int SizeOf = 24;

    /// <summary><c>type</c>: error type.</summary>
    public uint Type;

    /// <summary><c>func</c>: error function.</summary>
    public uint Func;

    /// <summary><c>addr</c>: address.</summary>
    public ulong Addr;

    /// <summary><c>mask</c>: address mask.</summary>
    public ulong Mask;

    static int IAbiStruct<VfioEehPeErr>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_eeh_pe_err", SizeOf,
    [
        new("type", Offsets.Type),
        new("func", Offsets.Func),
        new("addr", Offsets.Addr),
        new("mask", Offsets.Mask),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioEehPeErr value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioEehPeErr value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Type..], Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Func..], Func);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Addr..], Addr);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[Offsets.Mask..], Mask);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioEehPeErr IAbiStruct<VfioEehPeErr>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Type = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Type..]),
        Func = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Func..]),
        Addr = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Addr..]),
        Mask = BinaryPrimitives.ReadUInt64LittleEndian(source[Offsets.Mask..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_eeh_pe_err</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_eeh_pe_err, type)</c>.</summary>
        public const int Type = 0;

        /// <summary><c>offsetof(struct vfio_eeh_pe_err, func)</c>.</summary>
        public const int Func = 4;

        /// <summary><c>offsetof(struct vfio_eeh_pe_err, addr)</c>.</summary>
        public const int Addr = 8;

        /// <summary><c>offsetof(struct vfio_eeh_pe_err, mask)</c>.</summary>
        public const int Mask = 16;
    }
}
