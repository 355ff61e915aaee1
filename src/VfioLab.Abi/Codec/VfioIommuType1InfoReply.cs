namespace VfioLab.Abi;

/// <summary>
/// The reply of <c>VFIO_IOMMU_GET_INFO</c> on a type1 container, decoded: the fixed struct and, when the kernel set
/// <see cref="IommuInfoFlags.Caps"/> and a <c>cap_offset</c> (it leaves 0 there when <c>argsz</c> had no room for the
/// chain), the capabilities of its chain (<see cref="VfioCapabilityChain"/>; the first of each id counts, as in QEMU).
/// What the typed client returns and the scenario runner reports.
/// </summary>
/// <param name="Info">The fixed struct: argsz (the size the whole reply needs), flags, page sizes, cap_offset.</param>
/// <param name="IovaRanges">The usable IOVA ranges of the IOVA_RANGE capability; null without one.</param>
/// <param name="Migration">The MIGRATION capability (dirty-tracking page sizes, largest bitmap); null without one.</param>
/// <param name="DmaAvail">The DMA_AVAIL capability's free mapping slots; null without one.</param>
/// <param name="Error">What made the reply unreadable past some point (a malformed chain, a capability or range that
/// does not fit); null when all of it decoded. What precedes the problem is decoded all the same.</param>
public sealed record VfioIommuType1InfoReply(VfioIommuType1Info Info, IReadOnlyList<VfioIovaRange>? IovaRanges,
    VfioIommuType1InfoCapMigration? Migration, uint? DmaAvail, string? Error)
{
    /// <summary>Decodes <paramref name="reply"/>, the whole buffer the ioctl filled.</summary>
    public static VfioIommuType1InfoReply Decode(ReadOnlySpan<byte> reply)
    {
        if (!VfioIommuType1Info.TryRead(reply, out VfioIommuType1Info info))
        {
            VfioIommuType1Info.TryRead(reply, Math.Min(reply.Length, VfioIommuType1Info.SizeOf), out info);
            return new VfioIommuType1InfoReply(info, null, null, null,
                $"a 0x{reply.Length:x}-byte reply is shorter than the 0x{VfioIommuType1Info.SizeOf:x}-byte struct");
        }
        if ((info.Flags & IommuInfoFlags.Caps) == 0 || info.CapOffset == 0)
        {
            return new VfioIommuType1InfoReply(info, null, null, null, null);
        }
        var chain = VfioCapabilityChain.Walk(reply, info.CapOffset, VfioIommuType1Info.SizeOf);
        string? error = chain.Error;
        List<VfioIovaRange>? ranges = null;
        if (chain.TryFind((ushort)IommuType1InfoCapId.IovaRange, out VfioCapability c))
        {
            if (VfioCapabilityChain.TryRead(reply, c, out VfioIommuType1InfoCapIovaRange cap))
            {
                ranges = [];
                for (uint i = 0; i < cap.NrIovas; i++)
                {
                    long at = c.Offset + VfioIommuType1InfoCapIovaRange.Offsets.IovaRanges + ((long)i * VfioIovaRange.SizeOf);
                    if (!VfioCapabilityChain.TryReadAt(reply, at, out VfioIovaRange range))
                    {
                        error ??= VfioCapabilityChain.DoesNotFit(at, reply.Length);
                        break;
                    }
                    ranges.Add(range);
                }
            }
            else
            {
                error ??= VfioCapabilityChain.DoesNotFit(c.Offset, reply.Length);
            }
        }
        VfioIommuType1InfoCapMigration? migration = null;
        if (chain.TryFind((ushort)IommuType1InfoCapId.Migration, out c))
        {
            if (VfioCapabilityChain.TryRead(reply, c, out VfioIommuType1InfoCapMigration m))
            {
                migration = m;
            }
            else
            {
                error ??= VfioCapabilityChain.DoesNotFit(c.Offset, reply.Length);
            }
        }
        uint? dmaAvail = null;
        if (chain.TryFind((ushort)IommuType1InfoCapId.DmaAvail, out c))
        {
            if (VfioCapabilityChain.TryRead(reply, c, out VfioIommuType1InfoDmaAvail a))
            {
                dmaAvail = a.Avail;
            }
            else
            {
                error ??= VfioCapabilityChain.DoesNotFit(c.Offset, reply.Length);
            }
        }
        return new VfioIommuType1InfoReply(info, ranges, migration, dmaAvail, error);
    }
}
