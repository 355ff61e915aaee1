using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

// Taking a mapping's translations out of the domains and unpinning what they held, after the flush
// (spec §3.5): the unmap half of VfioIommu.Pin.
internal sealed partial class VfioIommu
{
    /// <summary>vfio_unpin_pages_remote: unpins a chunk's non-reserved pages, dirtying them for a writable
    /// mapping; with accounting, un-charges all but the externally pinned ones. Returns pages unpinned.</summary>
    private long UnpinPagesRemoteLocked(VfioDma dma, Iova iova, Pfn pfn, ulong npage, bool doAccounting)
    {
        long unlocked = (long)UnpinFrames(dma, pfn, npage);
        if (doAccounting && unlocked > 0)
        {
            long locked = (long)dma.CountVpfns(ByteRange.FromStartSize(iova.Value, npage << PageShift));
            _accounting.LockAcctLocked(dma, locked - unlocked, async: true);
        }
        return unlocked;
    }

    /// <summary>
    /// Unpins the frames a mapping's runs translated to, after the flush. Runs are sorted by frame and
    /// physically adjacent ones joined, so frames scattered in small runs are unpinned in a few calls
    /// (the pin counts and dirty bits end the same as unpinning run by run in IOVA order).
    /// </summary>
    private ulong UnpinTranslatedLocked(VfioDma dma, IReadOnlyList<MappedRun> runs)
    {
        if (runs.Count == 0)
        {
            return 0;
        }
        if (runs.Count == 1)
        {
            return UnpinFrames(dma, Pfn.FromPhys(runs[0].Phys, PageShift), runs[0].Iova.Size >> PageShift);
        }
        // Primitive keys sort without a comparison delegate; the arrays are rented, not left to the GC.
        int count = runs.Count;
        ulong[] phys = System.Buffers.ArrayPool<ulong>.Shared.Rent(count);
        ulong[] sizes = System.Buffers.ArrayPool<ulong>.Shared.Rent(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                phys[i] = runs[i].Phys.Value;
                sizes[i] = runs[i].Iova.Size;
            }
            Array.Sort(phys, sizes, 0, count);
            ulong unlocked = 0;
            int k = 0;
            while (k < count)
            {
                ulong start = phys[k];
                ulong bytes = sizes[k];
                k++;
                while (k < count && phys[k] == start + bytes)
                {
                    bytes += sizes[k];
                    k++;
                }
                unlocked += UnpinFrames(dma, new Pfn(start >> PageShift), bytes >> PageShift);
            }
            return unlocked;
        }
        finally
        {
            System.Buffers.ArrayPool<ulong>.Shared.Return(phys);
            System.Buffers.ArrayPool<ulong>.Shared.Return(sizes);
        }
    }

    /// <summary>put_pfn over a run: reserved and invalid pfns were never pinned and are skipped.</summary>
    private ulong UnpinFrames(VfioDma dma, Pfn first, ulong count)
    {
        ulong frames = Machine.Memory.FrameCount;
        if (first.Value >= frames || Machine.Memory.IsReservedOrInvalid(first))
        {
            return 0;
        }
        ulong n = Math.Min(count, frames - first.Value);
        Gup.UnpinUserPages(Machine, new PfnRun(first, n), (dma.Prot & IommuProt.Write) != 0, dma.Task.Pid);
        return n;
    }

    /// <summary>
    /// vfio_unmap_unpin: removes the mapping's translations from every domain but the first, then from the
    /// first with deferred IOTLB invalidation, flushes, and only then unpins the frames the first domain
    /// translated, so no page is unpinned while a domain may still reach it (spec §3.5). The kernel walks
    /// the first domain page by page and flushes every 512 regions; the model removes whole runs at once
    /// and flushes once, with the same pins, charges and ordering guarantee. With accounting the unpinned
    /// pages are un-charged and 0 is returned; otherwise their count.
    /// </summary>
    private long UnmapUnpinLocked(VfioDma dma, bool doAccounting)
    {
        if (dma.Size == 0 || !_domains.HasDomainLocked)
        {
            return 0;
        }
        List<MappedRun> runs = _unmapScratch;
        _domains.UnmapLocked(dma, runs);
        long unlocked = (long)UnpinTranslatedLocked(dma, runs);
        runs.Clear();
        if (runs.Capacity > UnmapScratchKeep)
        {
            // A huge scattered unmap grew it: do not keep megabytes alive for the next 4 KiB unmap.
            _unmapScratch = [];
        }
        dma.IommuMapped = false;
        if (doAccounting)
        {
            _accounting.LockAcctLocked(dma, -unlocked, async: true);
            return 0;
        }
        return unlocked;
    }
}
