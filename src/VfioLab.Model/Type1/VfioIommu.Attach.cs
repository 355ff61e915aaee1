using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// Group attach with domain reuse and replay (spec §2.6, §2.8, §3.9, §3.10).
internal sealed partial class VfioIommu
{
    /// <summary>
    /// vfio_iommu_type1_attach_group: EBUSY (vaddrs invalidated), EINVAL (already attached, aperture or
    /// reserved-region conflict with existing mappings, no valid IOVA left), ENOMEM (the group's entry, fault site
    /// <c>type1_group_alloc</c>), EPERM (no isolated MSI and
    /// <c>allow_unsafe_interrupts</c> off), the IOMMU core's allocation or attach error, or a replay error
    /// (pinning from <paramref name="current"/>'s mm, as Linux does). Any failure leaves everything as before.
    /// </summary>
    public Errno AttachGroup(VfioGroup group, Process? current)
    {
        using (_lock.EnterScope())
        {
            if (_tree.VaddrInvalidCountLocked > 0)
            {
                return Errno.EBUSY;
            }
            if (_domains.FindGroupLocked(group) is not null)
            {
                return Errno.EINVAL;
            }
            // kzalloc of the struct vfio_iommu_group, for an emulated (mdev) group as for a physical one.
            if (Faults.ShouldFail("type1_group_alloc"))
            {
                return Errno.ENOMEM;
            }
            IommuGroup? iommuGroup = group.Backing.IommuGroup;
            if (group.Type == VfioGroupType.EmulatedIommu || iommuGroup is null || iommuGroup.IsEmulated)
            {
                _domains.AddEmulatedLocked(group);
                if (Trace.Enabled)
                {
                    Emit("attach_group", current, TraceLog.F("group", group.Number), TraceLog.F("emulated", true));
                }
                return Errno.None;
            }
            Errno e = _domains.AttachIommuGroupLocked(group, iommuGroup, current, out DomainSet.PendingAttach? pending);
            if (e != Errno.None || pending is null)
            {
                return e;
            }
            e = ReplayLocked(pending.Domain, current);
            if (e != Errno.None)
            {
                _domains.AbandonAttachLocked(pending);
                return e;
            }
            _domains.CompleteAttachLocked(pending, current);
            OnPageSizesChangedLocked();
            return Errno.None;
        }
    }

    // A domain came or went while tracking: the dirty bitmaps follow the new minimum page size.
    private void OnPageSizesChangedLocked()
    {
        if (_dirtyTracking)
        {
            ResizeBitmapsLocked(_domains.MinPageSizeLocked);
        }
    }

    /// <summary>
    /// vfio_iommu_replay: copies every mapping into a new domain. Mappings already in the other domains are
    /// copied run by run; mappings made while there was no domain are pinned now, chunk by chunk, from the
    /// attaching process's mm and charged. On failure everything this replay mapped, pinned and charged is
    /// undone (aae7a75a821a) and the error returned.
    /// </summary>
    private Errno ReplayLocked(VfioDomain target, Process? current)
    {
        IommuDomain? first = _domains.HasDomainLocked ? _domains.DomainsLocked[0].Domain : null;
        List<VfioDma> dmas = _tree.AllLocked();
        Errno error = Errno.None;
        int failedAt = -1;
        for (int i = 0; i < dmas.Count && error == Errno.None; i++)
        {
            VfioDma dma = dmas[i];
            error = dma.IommuMapped && first is not null ? CopyMappedLocked(dma, first, target.Domain) : PinIntoLocked(dma, target.Domain, current);
            if (error != Errno.None)
            {
                failedAt = i;
            }
        }
        if (current is not null)
        {
            _batch.Release(Machine, dirty: false, current.Pid);
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
                var runIova = new Iova(run.Iova.Start);
                target.Domain.Unmap(runIova, run.Iova.Size);
                UnpinPagesRemoteLocked(dma, runIova, Pfn.FromPhys(run.Phys, PageShift), run.Iova.Size >> PageShift, doAccounting: true);
            }
        }
        if (Trace.Enabled)
        {
            Emit("replay_unwind", current, TraceLog.F("domain", target.Domain.Name), TraceLog.F("errno", error.ToString()));
        }
        return error;
    }

    private static Errno CopyMappedLocked(VfioDma dma, IommuDomain from, IommuDomain to)
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

    private Errno PinIntoLocked(VfioDma dma, IommuDomain to, Process? current)
    {
        AddressSpace? mm = current?.Mm;
        if (mm is null)
        {
            return Errno.ENODEV;
        }
        ulong limit = current!.MemlockLimitPages;
        ulong done = 0;
        while (done < dma.Size)
        {
            Iova iova = dma.IovaAt(done);
            long npage = PinPagesRemoteLocked(dma, mm, done, (dma.Size - done) >> PageShift, limit, out Pfn pfn);
            if (npage <= 0)
            {
                return npage == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(npage);
            }
            ulong bytes = (ulong)npage << PageShift;
            Errno e = to.Map(iova, pfn.ToPhys(PageShift), bytes, dma.Prot | IommuProt.Cache);
            if (e != Errno.None)
            {
                UnpinPagesRemoteLocked(dma, iova, pfn, (ulong)npage, doAccounting: true);
                _batch.Release(Machine, (dma.Prot & IommuProt.Write) != 0, current.Pid);
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
