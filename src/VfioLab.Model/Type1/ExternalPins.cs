using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// External pins of one type1 container (spec §1.8, §3.7, §3.15): the kernel-internal interface mediated devices use,
/// <c>vfio_iommu_type1_pin_pages</c>, <c>unpin_pages</c> and <c>dma_rw</c>. An external pin is a <c>vfio_pfn</c> in
/// its mapping's <c>pfn_list</c> (<see cref="VfioDma.TryFindVpfn"/>): one page pin however many counts, charged only
/// when the container has no IOMMU domain; when the last domain goes, each mapping is re-accounted to its external
/// pins. Who is told before a pinned mapping goes is <see cref="UnmapNotifier"/>'s.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects every mapping's external pins; the entry
/// points take it (the drivers call in holding their own lock, which comes before it), every <c>*Locked</c> member
/// asserts it. <c>_single</c> is scratch for one GUP call under the lock.
/// </remarks>
internal sealed class ExternalPins(Type1Context ctx, DmaTree tree, DomainSet domains, DmaPinning pinning, PfnmapTranslation pfnmap,
    LockedMemoryAccounting accounting, DirtyTracker dirty, UnmapNotifier notifier)
{
    private readonly PfnRun[] _single = new PfnRun[1];

    /// <summary>
    /// vfio_iommu_type1_pin_pages. In the kernel's order: EINVAL (v6.18: <paramref name="npage"/> &lt;= 0),
    /// EACCES (v1 container), EOVERFLOW (v6.18: the range wraps), EBUSY (vaddrs invalidated), EINVAL (no device
    /// registered for unmap notifications); then page by page: EINVAL (not inside a mapping), EPERM
    /// (<paramref name="prot"/> not within the mapping's), ENODEV (the owner mm is gone), the GUP error
    /// (EFAULT, ENOMEM), ENOMEM or EINTR from accounting (only without an IOMMU domain), EINVAL (a pfn without a
    /// struct page), ENOMEM (the <c>vpfn_alloc</c> fault site). A page pinned before is only counted again. Any
    /// failure releases what this call pinned and charged. On success the caller's group enters pinned-page
    /// dirty scope and <paramref name="npage"/> is returned.
    /// </summary>
    public long PinPages(VfioDevice device, ulong iova, int npage, IommuProt prot, Pfn[] pages)
    {
        if (ctx.Behavior.OverflowIsEoverflow && npage <= 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_iommu_type1_pin_pages", "npage {0} is not positive", (ulong)(long)npage,
                source: "linux-6.18: 6012379ede6a (Type1Behavior.OverflowIsEoverflow)");
        }
        if (!ctx.V2)
        {
            return Refusals.RefuseReturn(Errno.EACCES, "vfio_iommu_type1_pin_pages", "pinning needs a VFIO_TYPE1v2_IOMMU container; this one is v1");
        }
        if (ctx.Behavior.OverflowIsEoverflow && !ByteRange.TryFromStartSize(iova, (ulong)npage << ctx.PageShift, out _))
        {
            return Refusals.RefuseReturn(Errno.EOVERFLOW, "vfio_iommu_type1_pin_pages", "iova 0x{0:x} + {1} pages wraps past 2^64", iova, (ulong)npage,
                source: "linux-6.18: 6012379ede6a (Type1Behavior.OverflowIsEoverflow)");
        }
        using (ctx.Lock.EnterScope())
        {
            if (tree.VaddrInvalidCountLocked > 0)
            {
                ctx.Emit(TraceKind.Warn, null, TraceLog.F("what", "vfio_pin_pages not allowed with VFIO_UPDATE_VADDR"));
                return Refusals.RefuseReturn(Errno.EBUSY, "vfio_iommu_type1_pin_pages", "{0} mapping(s) have an invalidated vaddr (VFIO_UPDATE_VADDR in progress)",
                    (ulong)tree.VaddrInvalidCountLocked);
            }
            if (notifier.DeviceCountLocked == 0)
            {
                return Refusals.RefuseReturn(Errno.EINVAL, "vfio_iommu_type1_pin_pages", "no device that can be told to unpin (dma_unmap) is registered with the container");
            }
            // With an IOMMU domain every page is already pinned and charged by MAP or replay.
            bool doAccounting = !domains.HasDomainLocked;
            Errno error = Errno.None;
            int i;
            for (i = 0; i < npage; i++)
            {
                Iova pageIova = new Iova(iova).PlusWrapping((ulong)i << ctx.PageShift);
                error = PinOneExternalLocked(pageIova, prot, doAccounting, out Pfn pfn);
                if (error != Errno.None)
                {
                    break;
                }
                pages[i] = pfn;
            }
            if (error != Errno.None)
            {
                for (int j = 0; j < i; j++)
                {
                    Iova pageIova = new Iova(iova).PlusWrapping((ulong)j << ctx.PageShift);
                    VfioDma? dma = tree.FindLocked(pageIova);
                    if (dma is not null)
                    {
                        UnpinPageExternalLocked(dma, pageIova, doAccounting);
                    }
                }
                Array.Clear(pages, 0, Math.Min(pages.Length, i + 1));
                if (ctx.Trace.Enabled)
                {
                    ctx.Emit(TraceKind.PinPages, null, TraceLog.F("device", device.Name), TraceLog.F("iova", iova), TraceLog.F("npage", npage),
                        TraceLog.F("failed_at", i), TraceLog.F("errno", error.ToString()));
                }
                return error.AsReturn();
            }
            Type1Group? group = domains.FindGroupLocked(device.Group);
            System.Diagnostics.Debug.Assert(group is not null, "a device pins only while its group is attached");
            if (group is not null)
            {
                domains.EnterPinnedScopeLocked(group);
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.PinPages, null, TraceLog.F("device", device.Name), TraceLog.F("iova", iova), TraceLog.F("npage", npage),
                    TraceLog.F("charged", doAccounting));
            }
            // v6.17 and before: a negative count pins nothing and returns 0.
            return Math.Max(npage, 0);
        }
    }

    // One page of pin_pages: the mapping holding it, the prot check, an existing external pin counted again,
    // or a new pin from the owner's mm (charged without a domain) recorded as a vfio_pfn.
    private Errno PinOneExternalLocked(Iova pageIova, IommuProt prot, bool doAccounting, out Pfn pfn)
    {
        ctx.AssertLocked();
        pfn = default;
        VfioDma? dma = tree.FindLocked(pageIova);
        if (dma is null)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_pin_pages", "no mapping holds iova 0x{0:x} (vfio_find_dma)", pageIova.Value);
        }
        if ((dma.Prot & prot) != prot)
        {
            return Refusals.Refuse(Errno.EPERM, "vfio_iommu_type1_pin_pages", "iova 0x{0:x}: the pin asks prot 0x{1:x}, the mapping [0x{2:x}, 0x{3:x}] allows 0x{4}",
                pageIova.Value, (ulong)prot, dma.Range.Start, dma.Range.Last, ((int)dma.Prot).ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        }
        if (dma.TryFindVpfn(pageIova, out VfioPfn vpfn))
        {
            dma.SetVpfn(vpfn with { RefCount = vpfn.RefCount + 1 });
            pfn = vpfn.Pfn;
            return Errno.None;
        }
        Errno e = PinPageExternalLocked(dma, dma.VaddrAt(pageIova.Minus(dma.Iova)), doAccounting, out pfn);
        if (e != Errno.None)
        {
            return e;
        }
        if (!ctx.Machine.Memory.IsRam(pfn))
        {
            // !pfn_valid: the pfn was never pinned, so nothing is released.
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_pin_pages", "iova 0x{0:x} translates to pfn 0x{1:x}, which has no struct page (!pfn_valid)",
                pageIova.Value, pfn.Value);
        }
        if (ctx.Faults.ShouldFail(FaultSite.VpfnAlloc))
        {
            if (pinning.PutPfns(dma, pfn, 1) > 0 && doAccounting)
            {
                accounting.LockAcctLocked(dma, -1, async: true);
            }
            return Refusals.Refuse(Errno.ENOMEM, "vfio_add_to_pfn_list", "allocating the vfio_pfn for iova 0x{0:x} failed (injected)", pageIova.Value);
        }
        dma.SetVpfn(new VfioPfn(pageIova, pfn, 1));
        dirty.MarkDirtyLocked(dma, new ByteRange(pageIova.Value, pageIova.Value));
        return Errno.None;
    }

    /// <summary>vfio_pin_page_external: pins the one page at <paramref name="vaddr"/> of the mapping's owner mm
    /// (ENODEV when it has no users left), walking a PFNMAP VMA when GUP refuses it, and charges it when there
    /// is no IOMMU domain and the page is not reserved (on a charge failure the page is released).</summary>
    private Errno PinPageExternalLocked(VfioDma dma, HostVirtAddr vaddr, bool doAccounting, out Pfn pfn)
    {
        ctx.AssertLocked();
        pfn = default;
        AddressSpace mm = dma.Mm;
        if (!mm.TryGetUser())
        {
            return Refusals.Refuse(Errno.ENODEV, "vfio_pin_page_external", "the mapping's owner mm (process {0}) has no users left", (ulong)mm.OwnerPid);
        }
        try
        {
            bool write = (dma.Prot & IommuProt.Write) != 0;
            long got = Gup.PinUserPages(mm, vaddr, 1, write, _single, out _);
            if (got > 0)
            {
                pfn = _single[0].First;
            }
            else if (PfnmapTranslation.IsPfnmap(mm, vaddr))
            {
                // The PFNMAP branch of vaddr_get_pfns, shared with MAP: under seeds the device lookup (seed 003,
                // RFC 9/10 and 10/10 pass the dma to vaddr_get_pfn for both callers), so an external pin of a BAR
                // page holds the device as a MAP of it does.
                Errno e = pfnmap.TranslateLocked(dma, mm, vaddr, 1, write, out pfn, out _);
                if (e != Errno.None)
                {
                    return e;
                }
            }
            else
            {
                return got == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(got);
            }
            if (doAccounting && !ctx.Machine.Memory.IsReservedOrInvalid(pfn))
            {
                Errno e = accounting.LockAcctLocked(dma, 1, async: false);
                if (e != Errno.None)
                {
                    pinning.PutPfns(dma, pfn, 1);
                    return e;
                }
            }
            return Errno.None;
        }
        finally
        {
            mm.PutUser();
        }
    }

    /// <summary>vfio_unpin_page_external: drops one count of the page's external pin; at zero the page is
    /// unpinned (dirtied for a writable mapping), forgotten and, without a domain, un-charged. Returns the pages
    /// unpinned (0 or 1).</summary>
    private long UnpinPageExternalLocked(VfioDma dma, Iova pageIova, bool doAccounting)
    {
        ctx.AssertLocked();
        if (!dma.TryFindVpfn(pageIova, out VfioPfn vpfn))
        {
            return 0;
        }
        if (vpfn.RefCount > 1)
        {
            dma.SetVpfn(vpfn with { RefCount = vpfn.RefCount - 1 });
            return 0;
        }
        long unlocked = (long)pinning.PutPfns(dma, vpfn.Pfn, 1);
        dma.RemoveVpfn(pageIova);
        if (doAccounting)
        {
            accounting.LockAcctLocked(dma, -unlocked, async: true);
        }
        return unlocked;
    }

    /// <summary>
    /// vfio_iommu_type1_unpin_pages: for each page, the mapping holding it (stopping at the first page outside
    /// every mapping) and one count of its external pin; a page without one is skipped silently. False where the
    /// kernel WARNs: a v1 container, (v6.18) <paramref name="npage"/> &lt;= 0 or a wrapping range, or a stop
    /// before the last page; <paramref name="walked"/> gets the pages walked before the stop (0 on misuse).
    /// </summary>
    public bool UnpinPages(ulong iova, int npage, out int walked)
    {
        walked = 0;
        if (!ctx.V2)
        {
            return false;
        }
        if (ctx.Behavior.OverflowIsEoverflow && (npage <= 0 || !ByteRange.TryFromStartSize(iova, (ulong)npage << ctx.PageShift, out _)))
        {
            return false;
        }
        using (ctx.Lock.EnterScope())
        {
            bool doAccounting = !domains.HasDomainLocked;
            int i;
            for (i = 0; i < npage; i++)
            {
                Iova pageIova = new Iova(iova).PlusWrapping((ulong)i << ctx.PageShift);
                VfioDma? dma = tree.FindLocked(pageIova);
                if (dma is null)
                {
                    break;
                }
                UnpinPageExternalLocked(dma, pageIova, doAccounting);
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.UnpinPages, null, TraceLog.F("iova", iova), TraceLog.F("npage", npage), TraceLog.F("done", i));
            }
            walked = i;
            return i == npage;
        }
    }

    /// <summary>
    /// vfio_iommu_type1_dma_rw: EBUSY (vaddrs invalidated); then chunk by chunk, each up to the end of the
    /// mapping holding its first byte: EINVAL (no mapping there), EPERM (a write to a mapping without
    /// IOMMU_WRITE, or any access to one without IOMMU_READ; the owner mm is gone), EFAULT (a user thread of
    /// another mm calls, or the copy faults). Kernel threads adopt the owner's mm. A written chunk marks its pages
    /// dirty while tracking. Chunks already copied stay copied when a later one fails. Nothing is pinned.
    /// </summary>
    public Errno DmaRw(ulong iova, Span<byte> data, bool write, Process? current)
    {
        using (ctx.Lock.EnterScope())
        {
            if (tree.VaddrInvalidCountLocked > 0)
            {
                ctx.Emit(TraceKind.Warn, current, TraceLog.F("what", "vfio_dma_rw not allowed with VFIO_UPDATE_VADDR"));
                return Refusals.Refuse(Errno.EBUSY, "vfio_iommu_type1_dma_rw", "{0} mapping(s) have an invalidated vaddr (VFIO_UPDATE_VADDR in progress)",
                    (ulong)tree.VaddrInvalidCountLocked);
            }
            ulong done = 0;
            Errno error = Errno.None;
            while (done < (ulong)data.Length)
            {
                Iova at = new Iova(iova).PlusWrapping(done);
                error = DmaRwChunkLocked(at, data[(int)done..], write, current, out ulong copied);
                if (error != Errno.None)
                {
                    break;
                }
                done += copied;
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.DmaRw, current, TraceLog.F("iova", iova), TraceLog.F("size", data.Length), TraceLog.F("write", write),
                    TraceLog.F("copied", done), TraceLog.F("errno", error.ToString()));
            }
            return error;
        }
    }

    private Errno DmaRwChunkLocked(Iova iova, Span<byte> data, bool write, Process? current, out ulong copied)
    {
        ctx.AssertLocked();
        copied = 0;
        VfioDma? dma = tree.FindLocked(iova);
        if (dma is null)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dma_rw_chunk", "no mapping holds iova 0x{0:x} (vfio_find_dma)", iova.Value);
        }
        if ((write && (dma.Prot & IommuProt.Write) == 0) || (dma.Prot & IommuProt.Read) == 0)
        {
            return Refusals.Refuse(Errno.EPERM, "vfio_iommu_type1_dma_rw_chunk", (dma.Prot & IommuProt.Read) == 0
                ? "the mapping [0x{0:x}, 0x{1:x}] is not readable by the device (every access needs IOMMU_READ)"
                : "a write to the mapping [0x{0:x}, 0x{1:x}], which the device may only read", dma.Range.Start, dma.Range.Last);
        }
        AddressSpace mm = dma.Mm;
        if (!mm.TryGetUser())
        {
            return Refusals.Refuse(Errno.EPERM, "vfio_iommu_type1_dma_rw_chunk", "the mapping's owner mm (process {0}) has no users left (mmget_not_zero)", (ulong)mm.OwnerPid);
        }
        try
        {
            // A kernel thread (no mm) adopts the owner's mm; a user thread must already be in it.
            AddressSpace? callerMm = current?.Mm;
            if (current is not null && !ReferenceEquals(callerMm, mm))
            {
                return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_dma_rw_chunk", "the calling process {0} is not in the mapping owner's mm (process {1})",
                    (ulong)current.Pid, (ulong)mm.OwnerPid);
            }
            ulong offset = iova.Minus(dma.Iova);
            ulong count = Math.Min((ulong)data.Length, dma.Size - offset);
            HostVirtAddr vaddr = dma.VaddrAt(offset);
            AccessResult r = write ? mm.WriteMemory(vaddr, data[..(int)count]) : mm.ReadMemory(vaddr, data[..(int)count]);
            if (r != AccessResult.Ok)
            {
                return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_dma_rw_chunk", "copying {0} bytes at vaddr 0x{1:x} (iova 0x{2:x}) faulted", count, vaddr.Value, iova.Value);
            }
            copied = count;
            if (write)
            {
                dirty.MarkDirtyLocked(dma, dma.RangeAt(offset, count));
            }
            return Errno.None;
        }
        finally
        {
            mm.PutUser();
        }
    }

    /// <summary>The last IOMMU domain goes while emulated groups remain (vfio_iommu_unmap_unpin_reaccount): everything
    /// the IOMMU path pinned is unmapped and unpinned, and each mapping stays charged only for its external pins that
    /// are not reserved.</summary>
    public void ReaccountToExternalPinsLocked()
    {
        ctx.AssertLocked();
        foreach (VfioDma dma in tree.AllLocked())
        {
            long unlocked = pinning.UnmapUnpinLocked(dma, doAccounting: false);
            long locked = 0;
            foreach (VpfnRun run in dma.VpfnRuns())
            {
                locked += (long)(run.Pages - ctx.Machine.Memory.CountReservedOrInvalid(run.Pfn, run.Pages));
            }
            accounting.LockAcctLocked(dma, locked - unlocked, async: true);
        }
    }
}
