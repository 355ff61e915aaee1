using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// What the invariant checker reads (one consistent snapshot) and the hooks tests use to break one
// invariant at a time behind the backend's back (spec §4).
internal sealed partial class VfioIommu
{
    /// <summary>
    /// Copies the whole state under the lock: mappings (as the DMA tree holds them), domains with their
    /// groups, page-table runs and pending invalidations, emulated groups, IOVA windows and counters.
    /// Cost follows mappings, page-table runs and external pins, never pages.
    /// </summary>
    public VfioIommuSnapshot Snapshot()
    {
        using (_lock.EnterScope())
        {
            var order = new List<VfioDma>();
            var treeRuns = new Dictionary<VfioDma, List<ByteRange>>();
            foreach (Run<DmaRef> r in _tree.RunsLocked())
            {
                VfioDma dma = r.Value.Dma;
                if (!treeRuns.TryGetValue(dma, out List<ByteRange>? runs))
                {
                    runs = [];
                    treeRuns.Add(dma, runs);
                    order.Add(dma);
                }
                runs.Add(new ByteRange(r.Start, r.Last));
            }
            order.Sort((a, b) => a.Range.Start.CompareTo(b.Range.Start));
            var mappings = new List<VfioDmaSnapshot>(order.Count);
            foreach (VfioDma d in order)
            {
                mappings.Add(new VfioDmaSnapshot(d.Range.Start, d.Last, d.RequestedSize, d.Size, d.Vaddr.Value, d.Prot, d.IommuMapped, d.LockCap,
                    d.VaddrInvalid, d.Task, d.Mm, d.LockedVm, d.Bitmap?.LongLength ?? -1, d.BitmapPageSize, d.VpfnRuns(), treeRuns[d])
                {
                    VpfnsNotDirty = DirtyTracker.CountVpfnsNotDirty(d),
                });
            }
            return new VfioIommuSnapshot(ContainerId, V2, PageSize, mappings, _domains.SnapshotDomainsLocked(), _domains.SnapshotEmulatedLocked(),
                _domains.IovaListLocked.Ranges, _tree.DmaAvailLocked, _tree.DmaEntryLimit, _tree.CountLocked, _tree.VaddrInvalidCountLocked,
                _domains.NumNonPinnedGroupsLocked, _dirty.TrackingLocked, _domains.PgsizeBitmapLocked, _notifier.DeviceCountLocked)
            {
                NotifierBug = _notifier.BugLocked,
                DevicePfnmaps = _holds.SnapshotLocked(),
            };
        }
    }

    /// <summary>Test hook: the container lets go of <paramref name="device"/> (notifier unregistered, reference
    /// dropped) while its mappings of the device's memory stay (breaks pfnmap-device-referenced).</summary>
    internal void DropDeviceHoldForTest(VfioDevice device)
    {
        using (_lock.EnterScope())
        {
            _holds.DropHoldForTestLocked(device);
        }
    }

    /// <summary>Test hook: the container's release notifier for <paramref name="device"/> does nothing, so its
    /// mappings survive the device's release while reference and notifier stay (breaks
    /// no-translation-to-released-device).</summary>
    internal void IgnoreDeviceReleaseForTest(VfioDevice device)
    {
        using (_lock.EnterScope())
        {
            _holds.IgnoreReleaseForTestLocked(device);
        }
    }

    /// <summary>Test hook: <c>dma_avail</c> moves by <paramref name="delta"/> with no mapping made or removed
    /// (breaks dma-avail-conserved).</summary>
    internal void AdjustDmaAvailForTest(int delta)
    {
        using (_lock.EnterScope())
        {
            _tree.AdjustDmaAvailForTestLocked(delta);
        }
    }

    /// <summary>Test hook: the DMA tree hands <c>[first, last]</c> to the mapping at <paramref name="ownerIova"/>,
    /// whatever held it before (breaks mappings-disjoint).</summary>
    internal void ClaimTreeRangeForTest(ulong first, ulong last, ulong ownerIova)
    {
        using (_lock.EnterScope())
        {
            VfioDma owner = _tree.FindLocked(new Iova(ownerIova)) ?? throw new ArgumentException("no mapping there", nameof(ownerIova));
            _tree.ClaimRangeForTestLocked(new ByteRange(first, last), owner);
        }
    }

    /// <summary>Test hook: an IOPTE appears in domain <paramref name="domainIndex"/> only (breaks domains-agree).</summary>
    internal Errno MapStrayEntryForTest(int domainIndex, ulong iova, PhysAddr phys, ulong size)
    {
        using (_lock.EnterScope())
        {
            return _domains.DomainsLocked[domainIndex].Domain.Map(new Iova(iova), phys, size, IommuProt.Read | IommuProt.Write | IommuProt.Cache);
        }
    }

    /// <summary>Test hook: sets the mapping's <c>iommu_mapped</c> (false with domains breaks domains-agree).</summary>
    internal void SetIommuMappedForTest(ulong iova, bool value)
    {
        using (_lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).IommuMapped = value;
        }
    }

    /// <summary>Test hook: drops one pin of the frame the first domain translates <paramref name="iova"/> to,
    /// through the host memory directly, as a buggy unpin path would (breaks translation-backed, and
    /// pins-balanced unless the caller pins another frame). Returns the frame.</summary>
    internal Pfn UnpinBehindBackendForTest(ulong iova)
    {
        using (_lock.EnterScope())
        {
            Pfn pfn = Pfn.FromPhys(_domains.DomainsLocked[0].Domain.IovaToPhys(new Iova(iova)), PageShift);
            Machine.Memory.Unpin(pfn, 1);
            return pfn;
        }
    }

    /// <summary>Test hook: the mapping's <c>locked_vm</c> moves by <paramref name="delta"/> pages while the mm's
    /// does not (breaks locked-vm-matches-charges).</summary>
    internal void AdjustDmaLockedVmForTest(ulong iova, long delta)
    {
        using (_lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).LockedVm += delta;
        }
    }

    /// <summary>Test hook: in every domain, the page at <paramref name="iova"/> now translates to the frame the page
    /// at <paramref name="sourceIova"/> (same mapping) translates to; the pin of the frame it leaves stays, so pin
    /// and charge totals are unchanged (breaks host-page-charged-once-per-mapping only).</summary>
    internal void AliasPageForTest(ulong iova, ulong sourceIova)
    {
        using (_lock.EnterScope())
        {
            VfioDma dma = FindDmaOrThrowLocked(iova);
            foreach (VfioDomain d in _domains.DomainsLocked)
            {
                RewritePageLocked(d.Domain, dma, iova, d.Domain.IovaToPhys(new Iova(sourceIova)), deferred: false);
            }
        }
    }

    /// <summary>Test hook: the first domain's IOPTEs of the mapping at <paramref name="iova"/> are unmapped with
    /// deferred invalidation and mapped back, and the IOTLB is never flushed (breaks unpin-after-flush).</summary>
    internal void LeavePendingInvalidationForTest(ulong iova)
    {
        using (_lock.EnterScope())
        {
            IommuDomain first = _domains.DomainsLocked[0].Domain;
            RewritePageLocked(first, FindDmaOrThrowLocked(iova), iova, first.IovaToPhys(new Iova(iova)), deferred: true);
        }
    }

    /// <summary>Test hook: records an external pin (vfio_pfn) of <paramref name="pfn"/> at <paramref name="iova"/>
    /// and takes the one page pin an external pin holds, without charging anything. With a zero
    /// <paramref name="refCount"/> or no registered device it breaks vpfn-consistent.</summary>
    internal void SetVpfnForTest(ulong iova, Pfn pfn, uint refCount)
    {
        using (_lock.EnterScope())
        {
            VfioDma dma = FindDmaOrThrowLocked(iova);
            if (!Machine.Memory.IsReservedOrInvalid(pfn))
            {
                Machine.Memory.Pin(pfn, 1);
            }
            dma.SetVpfn(new VfioPfn(new Iova(iova), pfn, refCount));
        }
    }

    /// <summary>Test hook: clears the dirty bit of the externally pinned page at <paramref name="iova"/> while
    /// tracking runs (breaks vpfn-consistent).</summary>
    internal void ClearDirtyBitForTest(ulong iova)
    {
        using (_lock.EnterScope())
        {
            _dirty.ClearDirtyBitForTestLocked(FindDmaOrThrowLocked(iova), new Iova(iova));
        }
    }

    /// <summary>Test hook: overwrites <c>vaddr_invalid_count</c> (breaks vaddr-invalid-count).</summary>
    internal void SetVaddrInvalidCountForTest(int value)
    {
        using (_lock.EnterScope())
        {
            _tree.SetVaddrInvalidCountForTestLocked(value);
        }
    }

    /// <summary>Test hook: the mapping loses its dirty bitmap while tracking runs (breaks dirty-bitmaps-present).</summary>
    internal void DropBitmapForTest(ulong iova)
    {
        using (_lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).Bitmap = null;
        }
    }

    /// <summary>Test hook: overwrites <c>num_non_pinned_groups</c> (breaks non-pinned-groups-count).</summary>
    internal void SetNumNonPinnedGroupsForTest(int value)
    {
        using (_lock.EnterScope())
        {
            _domains.SetNumNonPinnedGroupsForTestLocked(value);
        }
    }

    /// <summary>Test hook: replaces the valid IOVA windows as given, unchecked (breaks mapping-in-iova-range when
    /// a mapping falls outside, the windows are unsorted or overlapping, or one covers a reserved hole).</summary>
    internal void SetIovaListForTest(IEnumerable<ByteRange> windows)
    {
        using (_lock.EnterScope())
        {
            _domains.SetIovaListForTestLocked(windows);
        }
    }

    /// <summary>Test hook: overwrites <c>pgsize_bitmap</c> (breaks pgsize-bitmap).</summary>
    internal void SetPgsizeBitmapForTest(ulong bitmap)
    {
        using (_lock.EnterScope())
        {
            _domains.SetPgsizeBitmapForTestLocked(bitmap);
        }
    }

    /// <summary>Test hook: the group is listed among the emulated groups too, in pinned-page scope
    /// (breaks group-attached-once when it already sits in a domain).</summary>
    internal void ListAsEmulatedForTest(VfioGroup group)
    {
        using (_lock.EnterScope())
        {
            _domains.AddEmulatedLocked(group);
        }
    }

    private VfioDma FindDmaOrThrowLocked(ulong iova) =>
        _tree.FindLocked(new Iova(iova)) ?? throw new ArgumentException($"no mapping at 0x{iova:x}", nameof(iova));

    // Unmaps the mapping's IOPTEs from one domain and maps them back with the host page at `page`
    // translating to `phys`; the IOMMU picks page sizes afresh.
    private void RewritePageLocked(IommuDomain domain, VfioDma dma, ulong page, PhysAddr phys, bool deferred)
    {
        IReadOnlyList<MappedRun> runs = domain.MappedRuns(dma.Range);
        ulong unmapped = deferred ? domain.UnmapDeferred(dma.Iova, dma.Size) : domain.Unmap(dma.Iova, dma.Size);
        System.Diagnostics.Debug.Assert(unmapped == dma.Size, "the mapping was wholly translated");
        ulong pageLast = page + (PageSize - 1);
        foreach (MappedRun r in runs)
        {
            if (!r.Iova.Contains(page))
            {
                domain.Map(new Iova(r.Iova.Start), r.Phys, r.Iova.Last - r.Iova.Start + 1, r.Prot);
                continue;
            }
            if (page > r.Iova.Start)
            {
                domain.Map(new Iova(r.Iova.Start), r.Phys, page - r.Iova.Start, r.Prot);
            }
            domain.Map(new Iova(page), phys, PageSize, r.Prot);
            if (pageLast < r.Iova.Last)
            {
                domain.Map(new Iova(pageLast + 1), new PhysAddr(r.Phys.Value + (pageLast + 1 - r.Iova.Start)), r.Iova.Last - pageLast, r.Prot);
            }
        }
    }

    /// <summary>Calls <paramref name="visit"/> with (mapping IOVA, bitmap words) for every mapping that has a dirty
    /// bitmap, in IOVA order, under the container's lock; the callback must not keep the array.</summary>
    public void VisitDirtyBitmaps(Action<ulong, ulong[]> visit) => _dirty.VisitBitmaps(visit);
}
