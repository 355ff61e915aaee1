using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Pci;

namespace VfioLab.Iommu;

/// <summary>
/// A device's DMA through its group's IOMMU domain: the hardware path from a bus-master TLP at an
/// IOVA to physical addresses (the DMA remapping unit's translation, with faults reported as a DMAR
/// fault record or SMMU event would be). It only translates and classifies; the Host and Vfio layers
/// perform the memory or BAR access on the returned pieces.
/// </summary>
/// <remarks>Stateless; the domain's and topology's locks are taken per lookup, so a concurrent unmap
/// may make a later piece fault, as on hardware.</remarks>
internal static class IommuDma
{
    /// <summary>
    /// Translates a device access (through the PE's TCE windows for a sPAPR group) of <paramref name="size"/> bytes at <paramref name="iova"/> by
    /// page-table runs (not pages) and splits the physical result at BAR boundaries, so pieces that
    /// land in a BAR come back as <see cref="DmaTargetKind.PeerToPeer"/>. A fault is recorded in
    /// <paramref name="faultLog"/> and the walk stops there.
    /// </summary>
    public static DmaAccessResult Access(
        IommuGroup group, string device, Iova iova, ulong size, bool write, PciTopology? topology, IommuFaultLog? faultLog)
    {
        List<DmaSegment> segments = [];
        if (size == 0)
        {
            return new DmaAccessResult(segments, null);
        }
        IommuDomain? domain = group.Domain;
        TceTableGroup? tces = group.TableGroup;
        if (domain is null && tces is null)
        {
            return Fail(group, faultLog, segments,
                new IommuFault(device, iova, write, group.IsEmulated ? IommuFaultReason.NoIommu : IommuFaultReason.NoDomain));
        }
        ulong cursor = iova.Value;
        ulong remaining = size;
        while (remaining != 0)
        {
            IommuTranslation t = tces is not null ? tces.Translate(new Iova(cursor), write) : domain!.Translate(new Iova(cursor), write);
            if (!t.Ok)
            {
                return Fail(group, faultLog, segments, new IommuFault(device, new Iova(cursor), write, t.Fault));
            }
            ulong n = Math.Min(remaining, t.ContiguousBytes);
            SplitByBars(topology, new Iova(cursor), t.Phys, n, segments);
            remaining -= n;
            if (remaining != 0)
            {
                if (cursor + n < cursor)
                {
                    return Fail(group, faultLog, segments, new IommuFault(device, new Iova(0), write, IommuFaultReason.NotMapped));
                }
                cursor += n;
            }
        }
        if (group.Trace.Enabled)
        {
            group.Trace.Emit(TraceKind.Dma, 0, TraceLog.F("device", device), TraceLog.F("iova", iova.Value), TraceLog.F("size", size),
                TraceLog.F("write", write), TraceLog.F("segments", segments.Count));
        }
        return new DmaAccessResult(segments, null);
    }

    /// <summary>Translates one IOVA for a device: <see cref="IommuDomain.Translate"/> of the group's domain,
    /// or the no-domain / no-IOMMU fault. Records nothing (a query, as scenario <c>check: translate</c>).</summary>
    public static IommuTranslation Translate(IommuGroup group, Iova iova, bool write)
    {
        if (group.TableGroup is { } tces)
        {
            return tces.Translate(iova, write);
        }
        IommuDomain? domain = group.Domain;
        if (domain is null)
        {
            return IommuTranslation.Faulted(group.IsEmulated ? IommuFaultReason.NoIommu : IommuFaultReason.NoDomain);
        }
        return domain.Translate(iova, write);
    }

    private static DmaAccessResult Fail(IommuGroup group, IommuFaultLog? log, List<DmaSegment> segments, IommuFault fault)
    {
        log?.Record(fault);
        group.Trace.Emit(TraceKind.IommuFault, 0, TraceLog.F("device", fault.Device), TraceLog.F("iova", fault.Iova.Value),
            TraceLog.F("write", fault.Write), TraceLog.F("reason", fault.Reason.ToString()));
        return new DmaAccessResult(segments, fault);
    }

    private static void SplitByBars(PciTopology? topology, Iova iova, PhysAddr phys, ulong size, List<DmaSegment> segments)
    {
        ulong done = 0;
        while (done < size)
        {
            ulong pa = phys.Value + done;
            ulong left = size - done;
            ulong n;
            if (topology is not null && topology.TryFindBar(new PhysAddr(pa), out PciFunction? f, out PciBar? bar))
            {
                n = Math.Min(left, bar!.PhysRange.Last - pa + 1);
                segments.Add(new DmaSegment(iova.Plus(done), new PhysAddr(pa), n, DmaTargetKind.PeerToPeer, f, bar.Index, pa - bar.Base.Value));
            }
            else
            {
                n = left;
                if (topology is not null && topology.TryFindNextBarStart(new PhysAddr(pa), out PhysAddr next) && next.Value - pa < left)
                {
                    n = next.Value - pa;
                }
                segments.Add(new DmaSegment(iova.Plus(done), new PhysAddr(pa), n, DmaTargetKind.Ram, null, 0, 0));
            }
            done += n;
        }
    }
}
