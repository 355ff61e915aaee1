using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

// VFIO_IOMMU_MAP_DMA / UNMAP_DMA on sPAPR: tce_iommu_build (v1: pin per TCE), tce_iommu_build_v2 (v2: through
// pre-registered memory), tce_iommu_clear. Both work by runs of TCEs, never TCE by TCE.
internal sealed partial class TceContainer
{
    /// <summary>
    /// VFIO_IOMMU_MAP_DMA, in the kernel's order: EPERM (not enabled: v1 ENABLE or a v2 registration), EFAULT
    /// (copy of 32 bytes), EINVAL (argsz, flags beyond READ|WRITE), the pending default window's errors, ENXIO
    /// (no window holds the IOVA), EINVAL (size or vaddr not TCE-page aligned, neither READ nor WRITE), then
    /// <c>iommu_tce_put_param_check</c>, which answers 1, not an errno, for an IOVA off a TCE page or outside
    /// the window (its macro ORs two checks): the ioctl returns 1 and maps nothing. A TCE already in use is
    /// replaced and its old page released. Model guard: a range running past the window's end (Linux checks
    /// only the first TCE and then writes past its table) is EINVAL with nothing done. On a failure part-way
    /// the TCEs this call wrote are cleared (the ones it replaced stay released, as in Linux).
    /// </summary>
    private long MapDmaLocked(Process caller, ref IoctlArgument argument)
    {
        if (!_enabled)
        {
            return Errno.EPERM.AsReturn();
        }
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaMap.MinSize]))
        {
            return Errno.EFAULT.AsReturn();
        }
        VfioIommuType1DmaMap.TryRead(raw, out VfioIommuType1DmaMap map);
        if (map.Argsz < VfioIommuType1DmaMap.MinSize || (map.Flags & ~(DmaMapFlags.Read | DmaMapFlags.Write)) != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        return MapDmaLocked(caller, map.Iova, map.Vaddr, map.Size, map.Flags);
    }

    /// <summary>The decoded half of MAP_DMA (also the typed entry point for tests and benchmarks).</summary>
    public long MapDma(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        using (_lock.EnterScope())
        {
            return _enabled ? MapDmaLocked(caller, iova, vaddr, size, flags) : Errno.EPERM.AsReturn();
        }
    }

    private long MapDmaLocked(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        Errno e = CreateDefaultWindowLocked(caller);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (FindTableLocked(iova, out TceTable? tbl) < 0)
        {
            return Errno.ENXIO.AsReturn();
        }
        ulong mask = tbl!.PageSize - 1;
        if (((size | vaddr) & mask) != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        IommuProt prot = ((flags & DmaMapFlags.Read) != 0 ? IommuProt.Read : 0) | ((flags & DmaMapFlags.Write) != 0 ? IommuProt.Write : 0);
        if (prot == IommuProt.None)
        {
            return Errno.EINVAL.AsReturn();
        }
        if ((iova & mask) != 0)
        {
            // iommu_tce_put_param_check's IOVA half; the window check cannot fail here (find_table found it).
            return 1;
        }
        ulong entry = iova >> tbl.PageShift;
        ulong pages = size >> tbl.PageShift;
        if (pages > 0 && !tbl.ContainsEntry(entry + pages - 1))
        {
            return Errno.EINVAL.AsReturn();
        }
        if (pages == 0)
        {
            return 0;
        }
        e = V2 ? BuildV2Locked(caller, tbl, entry, vaddr, pages, prot) : BuildV1Locked(caller, tbl, entry, vaddr, pages, prot);
        Emit("spapr.map", caller, Diagnostics.TraceLog.F("iova", iova), Diagnostics.TraceLog.F("vaddr", vaddr), Diagnostics.TraceLog.F("size", size),
            Diagnostics.TraceLog.F("errno", e.ToString()));
        return e.AsReturn();
    }

    /// <summary>
    /// VFIO_IOMMU_UNMAP_DMA: EPERM (not enabled), EFAULT (copy of 24 bytes), EINVAL (argsz, any flag), the
    /// pending default window, ENXIO (no window holds the IOVA), EINVAL (size off a TCE page), 1 for an IOVA off
    /// a TCE page (<c>iommu_tce_clear_param_check</c>); then every TCE of the range is cleared (holes are
    /// fine) and 0 returned: sPAPR writes no size back. Model guard as for MAP: past the window's end is EINVAL.
    /// </summary>
    private long UnmapDmaLocked(Process caller, ref IoctlArgument argument)
    {
        if (!_enabled)
        {
            return Errno.EPERM.AsReturn();
        }
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaUnmap.MinSize]))
        {
            return Errno.EFAULT.AsReturn();
        }
        VfioIommuType1DmaUnmap.TryRead(raw, VfioIommuType1DmaUnmap.MinSize, out VfioIommuType1DmaUnmap unmap);
        if (unmap.Argsz < VfioIommuType1DmaUnmap.MinSize || unmap.Flags != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        Errno e = CreateDefaultWindowLocked(caller);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (FindTableLocked(unmap.Iova, out TceTable? tbl) < 0)
        {
            return Errno.ENXIO.AsReturn();
        }
        ulong mask = tbl!.PageSize - 1;
        if ((unmap.Size & mask) != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        if ((unmap.Iova & mask) != 0)
        {
            return 1;
        }
        ulong entry = unmap.Iova >> tbl.PageShift;
        ulong pages = unmap.Size >> tbl.PageShift;
        if (pages > 0 && !tbl.ContainsEntry(entry + pages - 1))
        {
            return Errno.EINVAL.AsReturn();
        }
        ClearLocked(tbl, entry, pages, caller);
        Emit("spapr.unmap", caller, Diagnostics.TraceLog.F("iova", unmap.Iova), Diagnostics.TraceLog.F("size", unmap.Size));
        return 0;
    }

    /// <summary><c>tce_iommu_clear</c>: every valid TCE of the range becomes invalid and its page (v1) or region
    /// mapping count (v2) is released. Never fails.</summary>
    private void ClearLocked(TceTable table, ulong entry, ulong pages, Process? caller)
    {
        AssertLocked();
        var cleared = new List<Run<TceEntryRun>>();
        table.Clear(entry, pages, cleared);
        ReleaseEntriesLocked(cleared);
        if (cleared.Count > 0)
        {
            Emit("spapr.clear", caller, Diagnostics.TraceLog.F("entry", entry), Diagnostics.TraceLog.F("runs", cleared.Count));
        }
    }

    /// <summary>
    /// <c>tce_iommu_build</c> (v1): each TCE pins the system page its user address lies in, from the caller's mm
    /// (write access unless the device only reads), and points at that page plus the offset. Pinned a batch of
    /// pages at a time and written a physically contiguous run at a time. Any pin failure is EFAULT (the kernel
    /// maps every GUP error to EFAULT); the TCEs written so far are cleared.
    /// </summary>
    private Errno BuildV1Locked(Process caller, TceTable tbl, ulong entry, ulong vaddr, ulong pages, IommuProt prot)
    {
        AddressSpace? mm = caller.Mm;
        if (mm is null)
        {
            return Errno.EFAULT;
        }
        int mmId = _driver.Mms.Of(mm).Id;
        int tceShift = tbl.PageShift;
        int pageShift = PageShift;
        bool write = (prot & IommuProt.Write) != 0;
        Span<PfnRun> runs = stackalloc PfnRun[16];
        var replaced = new List<Run<TceEntryRun>>();
        ulong done = 0;
        Errno error = Errno.None;
        while (done < pages)
        {
            ulong ua = vaddr + (done << tceShift);
            ulong lastUa = vaddr + ((pages - 1) << tceShift);
            ulong firstPage = ua >> pageShift;
            ulong pageCount = Math.Min((lastUa >> pageShift) - firstPage + 1, Host.Gup.DefaultBatchPages);
            long got = Host.Gup.PinUserPages(mm, new HostVirtAddr(firstPage << pageShift), pageCount, write, runs, out int runCount);
            if (got <= 0)
            {
                error = Errno.EFAULT;
                break;
            }
            ulong page = firstPage;
            for (int i = 0; i < runCount && done < pages; i++)
            {
                PfnRun run = runs[i];
                // TCEs whose page lies in this run: up to the first TCE starting past the run's last page.
                ulong runEndUa = (page + run.Count) << pageShift;
                ulong cur = vaddr + (done << tceShift);
                ulong n = Math.Min(pages - done, (runEndUa - cur + (1UL << tceShift) - 1) >> tceShift);
                ulong hpa = (run.First.Value << pageShift) + (cur - (page << pageShift));
                TcePins.PinExtra(Machine, hpa, n, tceShift);
                replaced.Clear();
                tbl.Exchange(entry + done, n, new TceEntryRun(hpa, cur, tceShift, prot, mmId), replaced);
                ReleaseEntriesLocked(replaced);
                done += n;
                page += run.Count;
            }
            if ((ulong)got < pageCount && runCount < runs.Length)
            {
                // GUP stopped at a page it could not pin: the kernel, pinning TCE by TCE, fails right there.
                error = Errno.EFAULT;
                break;
            }
        }
        if (error != Errno.None)
        {
            ClearLocked(tbl, entry, done, caller);
        }
        return error;
    }

    /// <summary>
    /// <c>tce_iommu_build_v2</c>: each TCE's user address must lie, with the whole TCE page, in a region the
    /// container's mm pre-registered (EINVAL otherwise, also when the region's pages are smaller than the TCE
    /// page); the TCE points at the region's frame for it, records the user address in the userspace view and
    /// raises the region's mapping count. Nothing is pinned or charged here. Written a run of the region's
    /// contiguous frames at a time. On EINVAL the TCEs written so far are cleared.
    /// </summary>
    private Errno BuildV2Locked(Process caller, TceTable tbl, ulong entry, ulong vaddr, ulong pages, IommuProt prot)
    {
        AddressSpace? mm = WorkingMmLocked(caller);
        if (mm is null)
        {
            return Errno.EINVAL;
        }
        MmIommuContext ctx = _driver.Mms.Of(mm);
        int tceShift = tbl.PageShift;
        ulong tceSize = tbl.PageSize;
        int pageShift = PageShift;
        var replaced = new List<Run<TceEntryRun>>();
        ulong done = 0;
        Errno error = Errno.None;
        while (done < pages)
        {
            ulong ua = vaddr + (done << tceShift);
            MmIommuRegion? region = ctx.Lookup(ua, tceSize, pageShift);
            if (region is null || tceShift > region.PageShift || !region.TryGetHpas((ua - region.Ua) >> pageShift, out Run<HpaRun> hpas))
            {
                error = Errno.EINVAL;
                break;
            }
            ulong regionEnd = region.Ua + region.Size(pageShift);
            ulong runEndUa = region.Ua + ((hpas.Last + 1) << pageShift);
            ulong n = Math.Min(pages - done, (runEndUa - ua + tceSize - 1) >> tceShift);
            n = Math.Min(n, (regionEnd - ua) >> tceShift);
            ulong pageIndex = (ua - region.Ua) >> pageShift;
            ulong hpa = (hpas.ValueAt(pageIndex).Pfn << pageShift) | (ua & ((1UL << pageShift) - 1));
            region.Mapped += n;
            replaced.Clear();
            tbl.Exchange(entry + done, n, new TceEntryRun(hpa, ua, tceShift, prot, ctx.Id), replaced);
            ReleaseEntriesLocked(replaced);
            done += n;
        }
        if (error != Errno.None)
        {
            ClearLocked(tbl, entry, done, caller);
        }
        return error;
    }

    /// <summary><c>mm_iommu_mapped_dec</c> for <paramref name="count"/> TCEs from <paramref name="run"/>: each
    /// lowers the mapping count of the region holding its user address (in the mm recorded in the entry), never
    /// below 1; an address in no region is skipped (the kernel's "was not cached").</summary>
    private void MappedDecLocked(TceEntryRun run, ulong count)
    {
        MmIommuContext? ctx = _driver.Mms.ById(run.MmId);
        ulong tceSize = 1UL << run.PageShift;
        ulong i = 0;
        while (i < count)
        {
            ulong ua = run.Ua + (i << run.PageShift);
            MmIommuRegion? r = ctx?.Lookup(ua, tceSize, PageShift);
            if (r is null)
            {
                i++;
                continue;
            }
            ulong inRegion = Math.Min(count - i, (r.Ua + r.Size(PageShift) - ua) >> run.PageShift);
            if (r.Mapped > 1)
            {
                r.Mapped = Math.Max(1, r.Mapped - inRegion);
            }
            i += inRegion;
        }
    }
}
