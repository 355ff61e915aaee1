using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_DEVICE_PCI_HOT_RESET</c>: reset the bus or slot, proving ownership of every affected group by its fd.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_pci_hot_reset</c> of <c>linux/vfio.h</c>: 12 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioPciHotReset : IAbiStruct<VfioPciHotReset>
{
    /// <summary><c>sizeof(struct vfio_pci_hot_reset)</c> on x86-64.</summary>
    public const int SizeOf = 12;

    /// <summary>The kernel's <c>minsz</c> (end of <c>count</c>).</summary>
    public const int MinSize = 12;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: none defined; 0.</summary>
    public uint Flags;

    /// <summary><c>count</c>: number of group fds that follow.</summary>
    public uint Count;

    static int IAbiStruct<VfioPciHotReset>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_pci_hot_reset", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("count", Offsets.Count),
        new("group_fds", Offsets.GroupFds),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioPciHotReset value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioPciHotReset value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Count..], Count);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    /// <summary>The argument size for <paramref name="groups"/> group fds: the struct and its <c>group_fds[]</c>.</summary>
    public static int SizeFor(int groups) => SizeOf + (groups * sizeof(int));

    /// <summary>Writes <c>count</c> and the flexible array <c>group_fds[]</c> of <paramref name="groupFds"/> (the caller
    /// writes <c>argsz</c> and <c>flags</c>).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeFor"/>.</exception>
    public static void WriteGroupFds(Span<byte> destination, ReadOnlySpan<int> groupFds)
    {
        AbiStruct.CheckDestination(destination, SizeFor(groupFds.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Count..], (uint)groupFds.Length);
        for (int i = 0; i < groupFds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(destination[(Offsets.GroupFds + (i * sizeof(int)))..], groupFds[i]);
        }
    }

    static VfioPciHotReset IAbiStruct<VfioPciHotReset>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        Count = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Count..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_pci_hot_reset</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_pci_hot_reset, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_pci_hot_reset, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_pci_hot_reset, count)</c>.</summary>
        public const int Count = 8;

        /// <summary><c>group_fds[]</c>: open group fds (s32 each) (flexible array; its elements follow the fixed part).</summary>
        public const int GroupFds = 12;
    }
}
