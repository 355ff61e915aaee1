using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// VFIO_IOMMU_MAP_DMA and UNMAP_DMA on one sPAPR TCE container: <c>tce_iommu_build</c> (v1: each TCE pins its system
/// page, <see cref="TcePins"/>), <c>tce_iommu_build_v2</c> (v2: through memory pre-registered in the mm, nothing pinned
/// here) and the clear of UNMAP. Both work by runs of TCEs, never TCE by TCE.
/// </summary>
/// <remarks>Lock: the container's lock (<see cref="TceContext.Lock"/>), held by the caller (the container's ioctl) and
/// asserted by every <c>*Locked</c> member; no state of its own (the TCEs are the windows' tables', the pins the
/// host's). ENABLE (v1) or a registration (v2) is the caller's check.</remarks>
internal sealed class TceMapping(TceContext ctx, TceContainerMm containerMm, TceWindows windows)
{
    /// <summary>
    /// VFIO_IOMMU_MAP_DMA, in the kernel's order: EPERM (not enabled: v1 ENABLE or a v2 registration), EFAULT
    /// (copy of 32 bytes), EINVAL (argsz, flags beyond READ|WRITE), the pending default window's errors, ENXIO
    /// (no window holds the IOVA), EINVAL (size or vaddr not TCE-page aligned, neither READ nor WRITE; WRITE alone
    /// maps READ|WRITE, as powernv's <c>pnv_tce_xchg</c> adds TCE_PCI_READ to a writable TCE), then
    /// <c>iommu_tce_put_param_check</c>, which answers 1, not an errno, for an IOVA off a TCE page or outside
    /// the window (its macro ORs two checks): the ioctl returns 1 and maps nothing. A TCE already in use is
    /// replaced and its old page released. A range running past the window's end is not refused: Linux checks
    /// only the first TCE (<c>iommu_tce_check_ioba</c>) and writes the rest past the window (in a multi-level
    /// table into levels allocated on demand), where the PHB never translates them; the model keeps them in the
    /// table beyond its window. On a failure part-way the TCEs this call wrote are cleared (the ones it replaced
    /// stay released, as in Linux).
    /// </summary>
    public long MapDmaIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaMap.MinSize]))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "tce_iommu_ioctl", "MAP_DMA: copy_from_user of the {0}-byte struct faulted", (ulong)VfioIommuType1DmaMap.MinSize);
        }
        VfioIommuType1DmaMap.TryRead(raw, out VfioIommuType1DmaMap map);
        if (map.Argsz < VfioIommuType1DmaMap.MinSize || (map.Flags & ~(DmaMapFlags.Read | DmaMapFlags.Write)) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_ioctl", "MAP_DMA: argsz {0} (minsz {1}) or flags 0x{2:x} (only READ|WRITE)", map.Argsz,
                (ulong)VfioIommuType1DmaMap.MinSize, (ulong)map.Flags);
        }
        return MapDmaLocked(caller, map.Iova, map.Vaddr, map.Size, map.Flags);
    }

    /// <summary>The decoded half of MAP_DMA, on an enabled container: the pending default window, ENXIO, EINVAL, 1 for an
    /// IOVA off a TCE page, then the build (v1 or v2).</summary>
    public long MapDmaLocked(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        ctx.AssertLocked();
        Errno e = windows.CreateDefaultWindowLocked(caller);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (windows.FindTableLocked(iova, out TceTable? tbl) < 0)
        {
            return Refusals.RefuseReturn(Errno.ENXIO, "tce_iommu_find_table", "no DMA window holds iova 0x{0:x}", iova);
        }
        ulong mask = tbl!.PageSize - 1;
        if (((size | vaddr) & mask) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_ioctl", "MAP_DMA: size 0x{0:x} and vaddr 0x{1:x} must be multiples of the window's TCE page 0x{2:x}",
                size, vaddr, tbl.PageSize);
        }
        IommuProt prot = ((flags & DmaMapFlags.Read) != 0 ? IommuProt.Read : 0) | ((flags & DmaMapFlags.Write) != 0 ? IommuProt.Write : 0);
        if (prot == IommuProt.None)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_ioctl", "MAP_DMA: flags 0x{0:x} asks neither READ nor WRITE", (ulong)flags);
        }
        if ((prot & IommuProt.Write) != 0)
        {
            // pnv_tce_xchg (powernv): a TCE with write permission is written with read permission too.
            prot |= IommuProt.Read;
        }
        if ((iova & mask) != 0)
        {
            // iommu_tce_put_param_check's IOVA half; the window check cannot fail here (find_table found it).
            return 1;
        }
        ulong entry = iova >> tbl.PageShift;
        ulong pages = size >> tbl.PageShift;
        if (pages == 0)
        {
            return 0;
        }
        e = ctx.V2 ? BuildV2Locked(caller, tbl, entry, vaddr, pages, prot) : BuildV1Locked(caller, tbl, entry, vaddr, pages, prot);
        ctx.Emit(TraceKind.SpaprMap, caller, TraceLog.F("iova", iova), TraceLog.F("vaddr", vaddr), TraceLog.F("size", size),
            TraceLog.F("errno", e.ToString()));
        return e.AsReturn();
    }

    /// <summary>
    /// VFIO_IOMMU_UNMAP_DMA: EPERM (not enabled), EFAULT (copy of 24 bytes), EINVAL (argsz, any flag), the
    /// pending default window, ENXIO (no window holds the IOVA), EINVAL (size off a TCE page), 1 for an IOVA off
    /// a TCE page (<c>iommu_tce_clear_param_check</c>); then every TCE of the range is cleared (holes are
    /// fine) and 0 returned: sPAPR writes no size back. As for MAP only the first TCE is checked: a range running
    /// past the window's end also clears what MAP wrote there.
    /// </summary>
    public long UnmapDmaIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaUnmap.MinSize]))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "tce_iommu_ioctl", "UNMAP_DMA: copy_from_user of the {0}-byte struct faulted", (ulong)VfioIommuType1DmaUnmap.MinSize);
        }
        VfioIommuType1DmaUnmap.TryRead(raw, VfioIommuType1DmaUnmap.MinSize, out VfioIommuType1DmaUnmap unmap);
        if (unmap.Argsz < VfioIommuType1DmaUnmap.MinSize || unmap.Flags != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_ioctl", "UNMAP_DMA: argsz {0} (minsz {1}) or flags 0x{2:x} (none allowed)", unmap.Argsz,
                (ulong)VfioIommuType1DmaUnmap.MinSize, (ulong)unmap.Flags);
        }
        Errno e = windows.CreateDefaultWindowLocked(caller);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (windows.FindTableLocked(unmap.Iova, out TceTable? tbl) < 0)
        {
            return Refusals.RefuseReturn(Errno.ENXIO, "tce_iommu_find_table", "no DMA window holds iova 0x{0:x}", unmap.Iova);
        }
        ulong mask = tbl!.PageSize - 1;
        if ((unmap.Size & mask) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "tce_iommu_ioctl", "UNMAP_DMA: size 0x{0:x} is not a multiple of the window's TCE page 0x{1:x}", unmap.Size,
                tbl.PageSize);
        }
        if ((unmap.Iova & mask) != 0)
        {
            return 1;
        }
        ulong entry = unmap.Iova >> tbl.PageShift;
        ulong pages = unmap.Size >> tbl.PageShift;
        windows.ClearLocked(tbl, entry, pages, caller);
        ctx.Emit(TraceKind.SpaprUnmap, caller, TraceLog.F("iova", unmap.Iova), TraceLog.F("size", unmap.Size));
        return 0;
    }

    /// <summary>
    /// <c>tce_iommu_build</c> (v1): each TCE pins the system page its user address lies in, from the caller's mm
    /// (write access unless the device only reads), and points at that page plus the offset. Pinned a batch of
    /// pages at a time and written a physically contiguous run at a time. Any pin failure is EFAULT (the kernel
    /// maps every GUP error to EFAULT); the TCEs written so far are cleared.
    /// </summary>
    private Errno BuildV1Locked(Process caller, TceTable tbl, ulong entry, ulong vaddr, ulong pages, IommuProt prot)
    {
        ctx.AssertLocked();
        AddressSpace? mm = caller.Mm;
        if (mm is null)
        {
            return Refusals.Refuse(Errno.EFAULT, "tce_iommu_build", "the caller (process {0}) has no mm", (ulong)caller.Pid);
        }
        int mmId = ctx.Mms.Of(mm).Id;
        int tceShift = tbl.PageShift;
        int pageShift = ctx.PageShift;
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
                error = Refusals.Refuse(Errno.EFAULT, "tce_iommu_use_page", "pinning the page at vaddr 0x{0:x} failed (every GUP error is EFAULT here)", firstPage << pageShift);
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
                TcePins.PinExtra(ctx.Machine, hpa, n, tceShift);
                replaced.Clear();
                tbl.Exchange(entry + done, n, new TceEntryRun(hpa, cur, tceShift, prot, mmId), replaced);
                windows.ReleaseEntriesLocked(replaced);
                done += n;
                page += run.Count;
            }
            if ((ulong)got < pageCount && runCount < runs.Length)
            {
                // GUP stopped at a page it could not pin: the kernel, pinning TCE by TCE, fails right there.
                error = Refusals.Refuse(Errno.EFAULT, "tce_iommu_use_page", "pinning the page at vaddr 0x{0:x} failed (every GUP error is EFAULT here)",
                    (firstPage + (ulong)got) << pageShift);
                break;
            }
        }
        if (error != Errno.None)
        {
            windows.ClearLocked(tbl, entry, done, caller);
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
        ctx.AssertLocked();
        AddressSpace? mm = containerMm.WorkingLocked(caller);
        if (mm is null)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_build_v2", "the container has no working mm for process {0}", (ulong)caller.Pid);
        }
        MmIommuContext regions = ctx.Mms.Of(mm);
        int tceShift = tbl.PageShift;
        ulong tceSize = tbl.PageSize;
        int pageShift = ctx.PageShift;
        var replaced = new List<Run<TceEntryRun>>();
        ulong done = 0;
        Errno error = Errno.None;
        while (done < pages)
        {
            ulong ua = vaddr + (done << tceShift);
            MmIommuRegion? region = regions.Lookup(ua, tceSize, pageShift);
            if (region is null || tceShift > region.PageShift || !region.TryGetHpas((ua - region.Ua) >> pageShift, out Run<HpaRun> hpas))
            {
                error = Refusals.Refuse(Errno.EINVAL, "tce_iommu_prereg_ua_to_hpa", region is null
                    ? "[0x{0:x}, +0x{1:x}) lies in no memory region this mm pre-registered"
                    : "the TCE page 0x{1:x} at 0x{0:x} is larger than the region's pages (page_shift {2})", ua, tceSize, (ulong)(region?.PageShift ?? 0));
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
            tbl.Exchange(entry + done, n, new TceEntryRun(hpa, ua, tceShift, prot, regions.Id), replaced);
            windows.ReleaseEntriesLocked(replaced);
            done += n;
        }
        if (error != Errno.None)
        {
            windows.ClearLocked(tbl, entry, done, caller);
        }
        return error;
    }
}
