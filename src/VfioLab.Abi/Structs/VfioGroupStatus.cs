using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_GROUP_GET_STATUS</c>: whether the group is viable and attached to a container.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_group_status</c> of <c>linux/vfio.h</c>: 8 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioGroupStatus : IAbiStruct<VfioGroupStatus>
{
    /// <summary><c>sizeof(struct vfio_group_status)</c> on x86-64.</summary>
    public const int SizeOf = 8;

    /// <summary>The kernel's <c>minsz</c> (end of <c>flags</c>): a smaller <c>argsz</c> is EINVAL.</summary>
    public const int MinSize = 8;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: <see cref="GroupStatusFlags"/>.</summary>
    public GroupStatusFlags Flags;

    static int IAbiStruct<VfioGroupStatus>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_group_status", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioGroupStatus value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioGroupStatus value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioGroupStatus IAbiStruct<VfioGroupStatus>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (GroupStatusFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_group_status</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_group_status, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_group_status, flags)</c>.</summary>
        public const int Flags = 4;
    }
}
