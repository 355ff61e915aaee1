using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

// Pinning, IOMMU mapping and locked-memory accounting of one mapping (spec §2.9, §3.2, §3.3, §3.5).
internal sealed partial class VfioIommu
{
    /// <summary>
    /// vfio_pin_pages_remote: pins one chunk from byte <paramref name="offset"/> of the mapping, at its vaddr in the
    /// caller's <paramref name="mm"/>: physically contiguous and of one reserved-ness, at most
    /// <paramref name="npage"/> pages, and charges its non-reserved pages that have no external pin.
    /// Returns the chunk's pages with its first frame, or -errno with nothing of the chunk left pinned.
    /// </summary>
    private long PinPagesRemoteLocked(VfioDma dma, AddressSpace mm, ulong offset, ulong npage, ulong limit, out Pfn pfnBase)
    {
        pfnBase = default;
        if (Behavior.DisableHugepages)
        {
            npage = 1;
        }
        bool write = (dma.Prot & IommuProt.Write) != 0;
        bool haveBase = false;
        bool rsvd = false;
        ulong pinned = 0;
        long lockAcct = 0;
        Errno error = Errno.None;
        int shift = PageShift;
        while (npage > 0 && error == Errno.None)
        {
            if (_batch.IsEmpty)
            {
                HostVirtAddr vaddr = dma.VaddrAt(offset);
                long got = _batch.Refill(mm, vaddr, npage, write);
                if (got <= 0 && PfnmapTranslation.IsPfnmap(mm, vaddr))
                {
                    // GUP failed (it refuses VM_PFNMAP): on a PFNMAP VMA, translate through the page
                    // table instead, whatever GUP's error was (vaddr_get_pfns, §3.2).
                    Errno e = _pfnmap.TranslateLocked(dma, mm, vaddr, npage, write, out Pfn pfn, out ulong count);
                    if (e != Errno.None)
                    {
                        error = e;
                        break;
                    }
                    if (!haveBase)
                    {
                        pfnBase = pfn;
                        rsvd = true;
                        haveBase = true;
                    }
                    if (pfn.Value != pfnBase.Value + pinned || !rsvd)
                    {
                        break;
                    }
                    pinned += count;
                    npage -= count;
                    offset += count << shift;
                    continue;
                }
                if (got <= 0)
                {
                    error = got == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(got);
                    break;
                }
            }
            if (!haveBase)
            {
                // The chunk starts at the batch's first unconsumed page, fresh or left by the last chunk.
                pfnBase = _batch.Current;
                rsvd = Machine.Memory.IsReservedOrInvalid(pfnBase);
                haveBase = true;
            }
            bool chunkEnds = false;
            while (!_batch.IsEmpty && npage > 0)
            {
                Pfn pfn = _batch.Current;
                if (pfn.Value != pfnBase.Value + pinned || rsvd != Machine.Memory.IsReservedOrInvalid(pfn))
                {
                    chunkEnds = true;
                    break;
                }
                ulong n = Math.Min(_batch.CurrentRunLeft, npage);
                if (!rsvd)
                {
                    long chargeable = (long)(n - dma.CountVpfns(dma.RangeAt(offset, n << shift)));
                    if (_accounting.ExceedsLimitLocked(dma, mm, lockAcct + chargeable, limit))
                    {
                        error = Errno.ENOMEM;
                        break;
                    }
                    lockAcct += chargeable;
                }
                pinned += n;
                npage -= n;
                offset += n << shift;
                _batch.Consume(n);
            }
            if (chunkEnds)
            {
                break;
            }
        }
        if (error == Errno.None)
        {
            error = _accounting.LockAcctLocked(dma, lockAcct, async: false);
        }
        if (error != Errno.None)
        {
            if (pinned > 0 && !rsvd)
            {
                Gup.UnpinUserPages(Machine, new PfnRun(pfnBase, pinned), write, dma.Task.Pid);
            }
            _batch.Release(Machine, write, dma.Task.Pid);
            return error.AsReturn();
        }
        return (long)pinned;
    }

    /// <summary>vfio_pin_map_dma: pins and maps the mapping chunk by chunk from the caller's mm. On any
    /// failure the whole mapping is removed (everything unpinned, un-charged, unmapped, its slot returned).</summary>
    private Errno PinMapDmaLocked(VfioDma dma, Process caller)
    {
        AddressSpace? mm = caller.Mm;
        Errno error = Errno.None;
        if (mm is null)
        {
            error = Errno.ENODEV;
        }
        else
        {
            ulong limit = caller.MemlockLimitPages;
            ulong remaining = dma.RequestedSize;
            while (remaining > 0)
            {
                Iova iova = dma.IovaAt(dma.Size);
                long npage = PinPagesRemoteLocked(dma, mm, dma.Size, remaining >> PageShift, limit, out Pfn pfn);
                if (npage <= 0)
                {
                    error = npage == 0 ? Errno.EFAULT : ErrnoExtensions.FromReturn(npage);
                    break;
                }
                error = _domains.MapLocked(iova, pfn, (ulong)npage, dma.Prot);
                if (error != Errno.None)
                {
                    UnpinPagesRemoteLocked(dma, iova, pfn, (ulong)npage, doAccounting: true);
                    break;
                }
                ulong bytes = (ulong)npage << PageShift;
                remaining -= bytes;
                dma.Size += bytes;
            }
            _batch.Release(Machine, (dma.Prot & IommuProt.Write) != 0, caller.Pid);
        }
        dma.IommuMapped = true;
        if (error != Errno.None)
        {
            if (Trace.Enabled)
            {
                Emit("map_dma_unwind", caller, TraceLog.F("iova", dma.Iova.Value), TraceLog.F("mapped", dma.Size), TraceLog.F("errno", error.ToString()));
            }
            RemoveDmaLocked(dma);
        }
        return error;
    }
}
