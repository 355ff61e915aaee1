namespace VfioLab.Abi;

/// <summary>
/// The capability chain of a VFIO GET_INFO reply (IOMMU_GET_INFO, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO): <c>struct
/// vfio_info_cap_header</c> records linked by <c>next</c>, offsets from the start of the reply, 0 ending the chain. The
/// one reader of chains in VfioLab; the typed client and the scenario runner both walk replies through it.
/// </summary>
/// <remarks>
/// The kernel builds a chain by appending (<c>vfio_info_cap_add</c>) and then shifting every offset past the info
/// struct (<c>vfio_info_cap_shift</c>), so in every chain it writes the first header lies at or after the end of the
/// info struct and each <c>next</c> lies past the header that holds it. The walk holds a reply to exactly that and
/// stops at the first header that breaks it: one inside the info struct, one pointing back (or into its own header, or
/// at itself, so no loop), or one that does not fit the reply. Offsets only grow by at least a header, so the walk takes
/// at most <c>reply.Length / 8</c> steps whatever the reply says. The headers read before the break are kept, and
/// <see cref="Error"/> says what broke: a caller that must trust the reply (the typed client) refuses it, one that
/// reports what came back (the scenario runner) shows what was readable.
/// </remarks>
public sealed class VfioCapabilityChain
{
    private VfioCapabilityChain(IReadOnlyList<VfioCapability> capabilities, string? error)
    {
        Capabilities = capabilities;
        Error = error;
    }

    /// <summary>The capabilities in chain order, up to the end of the chain or the first malformed header.</summary>
    public IReadOnlyList<VfioCapability> Capabilities { get; }

    /// <summary>Why the walk stopped before a <c>next</c> of 0 (<c>malformed capability chain: ...</c>, with the
    /// offsets in hex); null when the chain ended as the kernel ends it.</summary>
    public string? Error { get; }

    /// <summary>Walks the chain of <paramref name="reply"/> from <paramref name="firstOffset"/>.</summary>
    /// <param name="reply">The whole buffer the GET_INFO ioctl filled.</param>
    /// <param name="firstOffset">The info struct's <c>cap_offset</c>; 0 is an empty chain.</param>
    /// <param name="infoSize">The info struct's size (<c>sizeof</c>): no capability starts inside it.</param>
    public static VfioCapabilityChain Walk(ReadOnlySpan<byte> reply, uint firstOffset, int infoSize)
    {
        var capabilities = new List<VfioCapability>();
        ulong offset = firstOffset;
        ulong floor = (ulong)Math.Max(infoSize, 0);
        while (offset != 0)
        {
            if (offset < floor)
            {
                string error = capabilities.Count == 0
                    ? $"malformed capability chain: the first header at 0x{offset:x} lies inside the 0x{floor:x}-byte info struct"
                    : $"malformed capability chain: next 0x{offset:x} of the header at 0x{capabilities[^1].Offset:x} does not point past it";
                return new VfioCapabilityChain(capabilities, error);
            }
            if (reply.Length < VfioInfoCapHeader.SizeOf || offset > (ulong)(reply.Length - VfioInfoCapHeader.SizeOf))
            {
                return new VfioCapabilityChain(capabilities,
                    $"malformed capability chain: header at 0x{offset:x} in a 0x{reply.Length:x}-byte reply");
            }
            VfioInfoCapHeader.TryRead(reply[(int)offset..], out VfioInfoCapHeader header);
            capabilities.Add(new VfioCapability((int)offset, header));
            floor = offset + VfioInfoCapHeader.SizeOf;
            offset = header.Next;
        }
        return new VfioCapabilityChain(capabilities, null);
    }

    /// <summary>The first capability with <paramref name="id"/> (QEMU's <c>vfio_get_*_info_cap</c> take the first too).</summary>
    /// <returns>Whether the chain holds one.</returns>
    public bool TryFind(ushort id, out VfioCapability capability)
    {
        foreach (VfioCapability c in Capabilities)
        {
            if (c.Header.Id == id)
            {
                capability = c;
                return true;
            }
        }
        capability = default;
        return false;
    }

    /// <summary>Reads the capability struct <typeparamref name="T"/> (header included) at <paramref name="capability"/>.</summary>
    /// <returns>False (and a default value) when the struct does not fit the reply.</returns>
    public static bool TryRead<T>(ReadOnlySpan<byte> reply, VfioCapability capability, out T value)
        where T : struct, IAbiStruct<T> => TryReadAt(reply, capability.Offset, out value);

    /// <summary>Reads a <typeparamref name="T"/> at <paramref name="offset"/> of <paramref name="reply"/> (a capability
    /// or an element of a flexible array that follows one).</summary>
    /// <returns>False (and a default value) when the offset is negative or the struct does not fit the reply.</returns>
    public static bool TryReadAt<T>(ReadOnlySpan<byte> reply, long offset, out T value)
        where T : struct, IAbiStruct<T>
    {
        if (offset < 0 || offset > reply.Length)
        {
            value = default;
            return false;
        }
        return AbiStruct.TryRead(reply[(int)offset..], out value);
    }

    /// <summary>The message for a capability or array element at <paramref name="offset"/> that does not fit.</summary>
    internal static string DoesNotFit(long offset, int replyLength) =>
        $"capability at 0x{offset:x} does not fit a 0x{replyLength:x}-byte reply";
}
