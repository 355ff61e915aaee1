using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// vfio_iommu_replay for one type1 container (spec §2.8, §3.10): every mapping is copied into a new domain before it
/// joins the list, from the first domain's translations where they exist, else by pinning now from the attaching
/// process's mm, chunk by chunk, and charging; a failure undoes everything this replay mapped, pinned and charged
/// (aae7a75a821a).
/// </summary>
/// <remarks>Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>), asserted on entry; no state of its
/// own (the mappings are <see cref="DmaTree"/>'s, the pins and the batch <see cref="DmaPinning"/>'s).</remarks>
internal sealed class DomainReplay(Type1Context ctx, DmaTree tree, DomainSet domains, DmaPinning pinning)
{
    /// <summary>
    /// Copies every mapping into <paramref name="target"/> (not listed yet). Mappings already in the other domains
    /// are copied run by run; mappings made while there was no domain are pinned from <paramref name="current"/>'s mm
    /// (ENODEV without one), GUP's error or ENOMEM/EINTR from accounting, or the IOMMU's map error. On failure the
    /// error is returned with the target, the pins and the charges as before.
    /// </summary>
    public Errno ReplayLocked(VfioDomain target, Process? current)
    {
        ctx.AssertLocked();
        IommuDomain? first = domains.HasDomainLocked ? domains.DomainsLocked[0].Domain : null;
        List<VfioDma> dmas = tree.AllLocked();
        Errno error = Errno.None;
        int failedAt = -1;
        for (int i = 0; i < dmas.Count && error == Errno.None; i++)
        {
            VfioDma dma = dmas[i];
            error = dma.IommuMapped && first is not null ? CopyMapped(dma, first, target.Domain) : PinIntoLocked(dma, target.Domain, current);
            if (error != Errno.None)
            {
                failedAt = i;
            }
        }
        if (current is not null)
        {
            pinning.ReleaseBatchLocked(dirty: false, current.Pid);
        }
        if (error == Errno.None)
        {
            foreach (VfioDma dma in dmas)
            {
                dma.IommuMapped = true;
            }
            return Errno.None;
        }
        for (int i = failedAt; i >= 0; i--)
        {
            VfioDma dma = dmas[i];
            if (dma.IommuMapped)
            {
                target.Domain.Unmap(dma.Iova, dma.Size);
                continue;
            }
            foreach (MappedRun run in MergeContiguous(target.Domain.MappedRuns(dma.Range)))
            {
                target.Domain.Unmap(new Iova(run.Iova.Start), run.Iova.Size);
                pinning.UnpinPagesRemoteLocked(dma, run.Iova, Pfn.FromPhys(run.Phys, ctx.PageShift), doAccounting: true);
            }
        }
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.ReplayUnwind, current, TraceLog.F("domain", target.Domain.Name), TraceLog.F("errno", error.ToString()));
        }
        return error;
    }

    // A mapping the domains already hold: the first domain's runs, joined, are mapped into the new one.
    private static Errno CopyMapped(VfioDma dma, IommuDomain from, IommuDomain to)
    {
        foreach (MappedRun run in MergeContiguous(from.MappedRuns(dma.MappedRange)))
        {
            Errno e = to.Map(new Iova(run.Iova.Start), run.Phys, run.Iova.Size, dma.Prot | IommuProt.Cache);
            if (e != Errno.None)
            {
                return e;
            }
        }
        return Errno.None;
    }

    // A mapping made while there was no domain: pinned and charged now, chunk by chunk, from the attaching process.
    private Errno PinIntoLocked(VfioDma dma, IommuDomain to, Process? current)
    {
        ctx.AssertLocked();
        AddressSpace? mm = current?.Mm;
        if (mm is null)
        {
            return Refusals.Refuse(Errno.ENODEV, "vfio_iommu_replay", "the attaching process has no mm to pin the mapping at 0x{0:x} from", dma.Iova.Value);
        }
        int shift = ctx.PageShift;
        ulong limit = current!.MemlockLimitPages;
        ulong done = 0;
        while (done < dma.Size)
        {
            long npage = pinning.PinPagesRemoteLocked(dma, mm, done, (dma.Size - done) >> shift, limit, out Pfn pfn);
            if (npage <= 0)
            {
                return npage == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(npage);
            }
            ulong bytes = (ulong)npage << shift;
            Errno e = to.Map(dma.IovaAt(done), pfn.ToPhys(shift), bytes, dma.Prot | IommuProt.Cache);
            if (e != Errno.None)
            {
                pinning.UnpinPagesRemoteLocked(dma, dma.RangeAt(done, bytes), pfn, doAccounting: true);
                pinning.ReleaseBatchLocked((dma.Prot & IommuProt.Write) != 0, current.Pid);
                return e;
            }
            done += bytes;
        }
        return Errno.None;
    }

    /// <summary>IOMMU runs joined where both IOVA and physical address continue (the regions the kernel
    /// builds page by page with iova_to_phys).</summary>
    private static List<MappedRun> MergeContiguous(IReadOnlyList<MappedRun> runs)
    {
        var merged = new List<MappedRun>(runs.Count);
        foreach (MappedRun r in runs)
        {
            if (merged.Count > 0)
            {
                MappedRun prev = merged[^1];
                if (prev.Iova.IsFollowedBy(r.Iova) && prev.Phys.Value + prev.Iova.Size == r.Phys.Value)
                {
                    merged[^1] = prev with { Iova = new ByteRange(prev.Iova.Start, r.Iova.Last) };
                    continue;
                }
            }
            merged.Add(r);
        }
        return merged;
    }
}
