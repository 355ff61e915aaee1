using System.Buffers.Binary;

namespace VfioLab.Abi;

/// <summary>
/// Argument of <c>VFIO_DEVICE_GET_INFO</c>: the device's kind, region and irq counts, and capability chain.
/// </summary>
/// <remarks>
/// Mirrors <c>struct vfio_device_info</c> of <c>linux/vfio.h</c>: 20 bytes on x86-64, little-endian.
/// </remarks>
public struct VfioDeviceInfo : IAbiStruct<VfioDeviceInfo>
{
    /// <summary><c>sizeof(struct vfio_device_info)</c> on x86-64.</summary>
    public const int SizeOf = 20;

    /// <summary>The kernel's <c>minsz</c> (end of <c>num_irqs</c>); <c>cap_offset</c> is used only when <c>argsz</c> covers it.</summary>
    public const int MinSize = 16;

    /// <summary><c>argsz</c>: size in bytes of the caller's buffer, including any data that follows the struct.</summary>
    public uint Argsz;

    /// <summary><c>flags</c>: output: device kind and features.</summary>
    public DeviceInfoFlags Flags;

    /// <summary><c>num_regions</c>: output: highest region index + 1.</summary>
    public uint NumRegions;

    /// <summary><c>num_irqs</c>: output: highest irq index + 1.</summary>
    public uint NumIrqs;

    /// <summary><c>cap_offset</c>: output: offset of the first capability from the start of the buffer, 0 if none.</summary>
    public uint CapOffset;

    static int IAbiStruct<VfioDeviceInfo>.SizeOf => SizeOf;

    /// <summary>The C name, size and field offsets, for <see cref="AbiLayout"/>.</summary>
    internal static AbiStructLayout Layout => new("vfio_device_info", SizeOf,
    [
        new("argsz", Offsets.Argsz),
        new("flags", Offsets.Flags),
        new("num_regions", Offsets.NumRegions),
        new("num_irqs", Offsets.NumIrqs),
        new("cap_offset", Offsets.CapOffset),
    ]);

    /// <summary>Reads the struct from the first <see cref="SizeOf"/> bytes of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than <see cref="SizeOf"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, out VfioDeviceInfo value) => AbiStruct.TryRead(source, out value);

    /// <summary>Reads only the first <paramref name="length"/> bytes, as the kernel copies only <c>minsz</c>
    /// bytes from user memory; bytes past <paramref name="length"/> read as zero.</summary>
    /// <returns><see langword="false"/> when <paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="source"/>.</returns>
    public static bool TryRead(ReadOnlySpan<byte> source, int length, out VfioDeviceInfo value) => AbiStruct.TryReadPrefix(source, length, out value);

    /// <summary>Writes all <see cref="SizeOf"/> bytes little-endian.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    public readonly void Write(Span<byte> destination)
    {
        AbiStruct.CheckDestination(destination, SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Argsz..], Argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.Flags..], (uint)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.NumRegions..], NumRegions);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.NumIrqs..], NumIrqs);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Offsets.CapOffset..], CapOffset);
    }

    /// <summary>Writes only the first <paramref name="length"/> bytes, as the kernel copies back
    /// <c>min(argsz, sizeof)</c> or <c>minsz</c> bytes; bytes past <paramref name="length"/> are left untouched.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, exceeds <see cref="SizeOf"/>, or exceeds <paramref name="destination"/>.</exception>
    public readonly void Write(Span<byte> destination, int length) => AbiStruct.WritePrefix(this, destination, length);

    static VfioDeviceInfo IAbiStruct<VfioDeviceInfo>.ReadUnchecked(ReadOnlySpan<byte> source) => new()
    {
        Argsz = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Argsz..]),
        Flags = (DeviceInfoFlags)BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.Flags..]),
        NumRegions = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.NumRegions..]),
        NumIrqs = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.NumIrqs..]),
        CapOffset = BinaryPrimitives.ReadUInt32LittleEndian(source[Offsets.CapOffset..]),
    };

    /// <summary>Byte offsets of the fields of <c>struct vfio_device_info</c> (<c>offsetof</c>).</summary>
    public static class Offsets
    {
        /// <summary><c>offsetof(struct vfio_device_info, argsz)</c>.</summary>
        public const int Argsz = 0;

        /// <summary><c>offsetof(struct vfio_device_info, flags)</c>.</summary>
        public const int Flags = 4;

        /// <summary><c>offsetof(struct vfio_device_info, num_regions)</c>.</summary>
        public const int NumRegions = 8;

        /// <summary><c>offsetof(struct vfio_device_info, num_irqs)</c>.</summary>
        public const int NumIrqs = 12;

        /// <summary><c>offsetof(struct vfio_device_info, cap_offset)</c>.</summary>
        public const int CapOffset = 16;
    }
}
