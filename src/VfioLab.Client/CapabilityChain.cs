using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// Walks a VFIO capability chain (<c>struct vfio_info_cap_header</c> records linked by <c>next</c>, offsets from
/// the start of the info buffer) as returned in IOMMU_GET_INFO and DEVICE_GET_REGION_INFO.
/// </summary>
internal static class CapabilityChain
{
    /// <summary>Every capability header in the chain starting at <paramref name="firstOffset"/> with its offset.</summary>
    /// <param name="buffer">The whole info buffer as the kernel filled it.</param>
    /// <param name="firstOffset">The info struct's <c>cap_offset</c> (0: no chain).</param>
    /// <param name="operation">Names the call, for the error on a malformed chain.</param>
    /// <exception cref="VfioException">A header lies outside the buffer, or the chain loops.</exception>
    public static List<(int Offset, VfioInfoCapHeader Header)> Walk(ReadOnlySpan<byte> buffer, uint firstOffset, string operation)
    {
        var caps = new List<(int, VfioInfoCapHeader)>();
        ulong offset = firstOffset;
        while (offset != 0)
        {
            if (offset > (ulong)(buffer.Length - VfioInfoCapHeader.SizeOf) || caps.Count > buffer.Length / VfioInfoCapHeader.SizeOf)
            {
                throw new VfioException(operation, Errno.None,
                    $"malformed capability chain: header at 0x{offset:x} in a 0x{buffer.Length:x}-byte reply");
            }
            VfioInfoCapHeader.TryRead(buffer[(int)offset..], out VfioInfoCapHeader header);
            caps.Add(((int)offset, header));
            offset = header.Next;
        }
        return caps;
    }

    /// <summary>Reads a struct of type <typeparamref name="T"/> at <paramref name="offset"/>, or throws when it does not fit.</summary>
    public static T Read<T>(ReadOnlySpan<byte> buffer, int offset, string operation)
        where T : struct, IAbiStruct<T>
    {
        if (offset < 0 || offset > buffer.Length || !AbiStruct.TryRead(buffer[offset..], out T value))
        {
            throw new VfioException(operation, Errno.None, $"capability at 0x{offset:x} does not fit a 0x{buffer.Length:x}-byte reply");
        }
        return value;
    }
}
