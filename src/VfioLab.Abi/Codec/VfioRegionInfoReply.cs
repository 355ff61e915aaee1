namespace VfioLab.Abi;

/// <summary>
/// The reply of <c>VFIO_DEVICE_GET_REGION_INFO</c>, decoded: the fixed struct and, when the kernel set
/// <see cref="RegionInfoFlags.Caps"/>, the SPARSE_MMAP capability of its chain (<see cref="VfioCapabilityChain"/>; the
/// first one counts): the parts of the region that may be mmapped.
/// </summary>
/// <param name="Info">The fixed struct: argsz, flags, index, cap_offset, size, offset.</param>
/// <param name="SparseMmapAreas">The mmappable areas of the SPARSE_MMAP capability; null without one (the whole
/// region may be mmapped when its flags say MMAP).</param>
/// <param name="Error">What made the reply unreadable past some point; null when all of it decoded.</param>
public sealed record VfioRegionInfoReply(VfioRegionInfo Info, IReadOnlyList<VfioRegionSparseMmapArea>? SparseMmapAreas, string? Error)
{
    /// <summary>Decodes <paramref name="reply"/>, the whole buffer the ioctl filled.</summary>
    public static VfioRegionInfoReply Decode(ReadOnlySpan<byte> reply)
    {
        if (!VfioRegionInfo.TryRead(reply, out VfioRegionInfo info))
        {
            VfioRegionInfo.TryRead(reply, Math.Min(reply.Length, VfioRegionInfo.SizeOf), out info);
            return new VfioRegionInfoReply(info, null,
                $"a 0x{reply.Length:x}-byte reply is shorter than the 0x{VfioRegionInfo.SizeOf:x}-byte struct");
        }
        if ((info.Flags & RegionInfoFlags.Caps) == 0 || info.CapOffset == 0)
        {
            return new VfioRegionInfoReply(info, null, null);
        }
        var chain = VfioCapabilityChain.Walk(reply, info.CapOffset, VfioRegionInfo.SizeOf);
        string? error = chain.Error;
        List<VfioRegionSparseMmapArea>? areas = null;
        if (chain.TryFind((ushort)RegionInfoCapId.SparseMmap, out VfioCapability c))
        {
            if (VfioCapabilityChain.TryRead(reply, c, out VfioRegionInfoCapSparseMmap cap))
            {
                areas = [];
                for (uint i = 0; i < cap.NrAreas; i++)
                {
                    long at = c.Offset + VfioRegionInfoCapSparseMmap.Offsets.Areas + ((long)i * VfioRegionSparseMmapArea.SizeOf);
                    if (!VfioCapabilityChain.TryReadAt(reply, at, out VfioRegionSparseMmapArea area))
                    {
                        error ??= VfioCapabilityChain.DoesNotFit(at, reply.Length);
                        break;
                    }
                    areas.Add(area);
                }
            }
            else
            {
                error ??= VfioCapabilityChain.DoesNotFit(c.Offset, reply.Length);
            }
        }
        return new VfioRegionInfoReply(info, areas, error);
    }
}
