using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// One device affected by a vfio-pci hot reset, an element of <see cref="VfioPciHotResetInfo"/>.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_pci_dependent_device</c> of <c>linux/vfio.h</c>: 8 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioPciDependentDevice : IAbiStruct<VfioPciDependentDevice>
{
    /// <summary><c>sizeof(struct vfio_pci_dependent_device)</c> on x86-64.</summary>
    public const int SizeOf = 8;

    /// <summary><c>group_id</c>: IOMMU group of the device.</summary>
    public uint GroupId;

    /// <summary><c>segment</c>: PCI segment (domain).</summary>
    public ushort Segment;

    /// <summary><c>bus</c>: PCI bus number.</summary>
    public byte Bus;

    /// <summary><c>devfn</c>: PCI device and function: <c>slot &lt;&lt; 3 | function</c>.</summary>
    public byte Devfn;

    static int IAbiStruct<VfioPciDependentDevice>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_pci_dependent_device", SizeOf,
    [
        new("group_id", Offsets.GroupId),
        new("segment", Offsets.Segment),
        new("bus", Offsets.Bus),
        new("devfn", Offsets.Devfn),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioPciDependentDevice value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioPciDependentDevice value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.GroupId..], GroupId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[Offsets.Segment..], Segment);
        destination[Offsets.Bus] = Bus;
        destination[Offsets.Devfn] = Devfn;
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioPciDependentDevice IAbiStruct<VfioPciDependentDevice>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        GroupId = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.GroupId..]),
        Segment = BinaryPrimitives.ReadUInt16LittleEndian(source[Offsets.Segment..]),
        Bus = source[Offsets.Bus],
        Devfn = source[Offsets.Devfn],
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_pci_dependent_device</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_pci_dependent_device, group_id)</c>.</summary>
        public const int GroupId = 0;

        /// <summary><c>offsetof(struct vfio_pci_dependent_device, segment)</c>.</summary>
        public const int Segment = 4;

        /// <summary><c>offsetof(struct vfio_pci_dependent_device, bus)</c>.</summary>
        public const int Bus = 6;

        /// <summary><c>offsetof(struct vfio_pci_dependent_device, devfn)</c>.</summary>
        public const int Devfn = 7;
    }
}
