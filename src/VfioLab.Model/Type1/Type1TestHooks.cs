using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// The hooks tests use to break one type1 invariant at a time behind the backend's back (spec §4), each naming the
/// invariant it breaks, so the checker's every rule is shown to fire. Reached through <see cref="VfioIommu.TestHooks"/>;
/// nothing else calls them.
/// </summary>
/// <remarks>Lock: each hook takes the container's type1 lock (<see cref="Type1Context.Lock"/>) for its whole change, as
/// a buggy path of the backend would hold it; no state of its own.</remarks>
internal sealed class Type1TestHooks(Type1Context ctx, DmaTree tree, IovaWindows iovaWindows, DomainSet domains, DeviceMemoryHolds holds)
{
    /// <summary>Test hook: one-page MAP_DMA and UNMAP_DMA go through the batch paths, not their straight lanes (the
    /// reference a twin host compares the lanes with; breaks nothing).</summary>
    public void UseBatchPathsForTest()
    {
        using (ctx.Lock.EnterScope())
        {
            ctx.OnePageLanes = false;
        }
    }

    /// <summary>How many one-page MAP_DMAs and UNMAP_DMAs their lanes finished.</summary>
    public int OnePageLanesTaken
    {
        get
        {
            using (ctx.Lock.EnterScope())
            {
                return ctx.OnePageLanesTaken;
            }
        }
    }

    /// <summary>Test hook: the container lets go of <paramref name="device"/> (notifier unregistered, reference
    /// dropped) while its mappings of the device's memory stay (breaks pfnmap-device-referenced).</summary>
    public void DropDeviceHoldForTest(VfioDevice device)
    {
        using (ctx.Lock.EnterScope())
        {
            holds.DropHoldForTestLocked(device);
        }
    }

    /// <summary>Test hook: the container's release notifier for <paramref name="device"/> does nothing, so its
    /// mappings survive the device's release while reference and notifier stay (breaks
    /// no-translation-to-released-device).</summary>
    public void IgnoreDeviceReleaseForTest(VfioDevice device)
    {
        using (ctx.Lock.EnterScope())
        {
            holds.IgnoreReleaseForTestLocked(device);
        }
    }

    /// <summary>Test hook: <c>dma_avail</c> moves by <paramref name="delta"/> with no mapping made or removed
    /// (breaks dma-avail-conserved).</summary>
    public void AdjustDmaAvailForTest(int delta)
    {
        using (ctx.Lock.EnterScope())
        {
            tree.AdjustDmaAvailForTestLocked(delta);
        }
    }

    /// <summary>Test hook: the DMA tree hands <c>[first, last]</c> to the mapping at <paramref name="ownerIova"/>,
    /// whatever held it before (breaks mappings-disjoint).</summary>
    public void ClaimTreeRangeForTest(ulong first, ulong last, ulong ownerIova)
    {
        using (ctx.Lock.EnterScope())
        {
            VfioDma owner = tree.FindLocked(new Iova(ownerIova)) ?? throw new ArgumentException("no mapping there", nameof(ownerIova));
            tree.ClaimRangeForTestLocked(new ByteRange(first, last), owner);
        }
    }

    /// <summary>Test hook: an IOPTE appears in domain <paramref name="domainIndex"/> only (breaks domains-agree).</summary>
    public Errno MapStrayEntryForTest(int domainIndex, ulong iova, PhysAddr phys, ulong size)
    {
        using (ctx.Lock.EnterScope())
        {
            return domains.DomainsLocked[domainIndex].Domain.Map(new Iova(iova), phys, size, IommuProt.Read | IommuProt.Write | IommuProt.Cache);
        }
    }

    /// <summary>Test hook: sets the mapping's <c>iommu_mapped</c> (false with domains breaks domains-agree).</summary>
    public void SetIommuMappedForTest(ulong iova, bool value)
    {
        using (ctx.Lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).IommuMapped = value;
        }
    }

    /// <summary>Test hook: drops one pin of the frame the first domain translates <paramref name="iova"/> to,
    /// through the host memory directly, as a buggy unpin path would (breaks translation-backed, and
    /// pins-balanced unless the caller pins another frame). Returns the frame.</summary>
    public Pfn UnpinBehindBackendForTest(ulong iova)
    {
        using (ctx.Lock.EnterScope())
        {
            Pfn pfn = Pfn.FromPhys(domains.DomainsLocked[0].Domain.IovaToPhys(new Iova(iova)), ctx.PageShift);
            ctx.Machine.Memory.Unpin(pfn, 1);
            return pfn;
        }
    }

    /// <summary>Test hook: the mapping's <c>locked_vm</c> moves by <paramref name="delta"/> pages while the mm's
    /// does not (breaks locked-vm-matches-charges).</summary>
    public void AdjustDmaLockedVmForTest(ulong iova, long delta)
    {
        using (ctx.Lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).LockedVm += delta;
        }
    }

    /// <summary>Test hook: in every domain, the page at <paramref name="iova"/> now translates to the frame the page
    /// at <paramref name="sourceIova"/> (same mapping) translates to; the pin of the frame it leaves stays, so pin
    /// and charge totals are unchanged (breaks host-page-charged-once-per-mapping only).</summary>
    public void AliasPageForTest(ulong iova, ulong sourceIova)
    {
        using (ctx.Lock.EnterScope())
        {
            VfioDma dma = FindDmaOrThrowLocked(iova);
            foreach (VfioDomain d in domains.DomainsLocked)
            {
                RewritePageLocked(d.Domain, dma, iova, d.Domain.IovaToPhys(new Iova(sourceIova)), deferred: false);
            }
        }
    }

    /// <summary>Test hook: the first domain's IOPTEs of the mapping at <paramref name="iova"/> are unmapped with
    /// deferred invalidation and mapped back, and the IOTLB is never flushed (breaks unpin-after-flush).</summary>
    public void LeavePendingInvalidationForTest(ulong iova)
    {
        using (ctx.Lock.EnterScope())
        {
            IommuDomain first = domains.DomainsLocked[0].Domain;
            RewritePageLocked(first, FindDmaOrThrowLocked(iova), iova, first.IovaToPhys(new Iova(iova)), deferred: true);
        }
    }

    /// <summary>Test hook: records an external pin (vfio_pfn) of <paramref name="pfn"/> at <paramref name="iova"/>
    /// and takes the one page pin an external pin holds, without charging anything. With a zero
    /// <paramref name="refCount"/> or no registered device it breaks vpfn-consistent.</summary>
    public void SetVpfnForTest(ulong iova, Pfn pfn, uint refCount)
    {
        using (ctx.Lock.EnterScope())
        {
            VfioDma dma = FindDmaOrThrowLocked(iova);
            if (!ctx.Machine.Memory.IsReservedOrInvalid(pfn))
            {
                ctx.Machine.Memory.Pin(pfn, 1);
            }
            dma.SetVpfn(new VfioPfn(new Iova(iova), pfn, refCount));
        }
    }

    /// <summary>Test hook: clears the dirty bit of the externally pinned page at <paramref name="iova"/> while
    /// tracking runs (breaks vpfn-consistent).</summary>
    public void ClearDirtyBitForTest(ulong iova)
    {
        using (ctx.Lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).ClearDirtyBitForTest(new Iova(iova));
        }
    }

    /// <summary>Test hook: overwrites <c>vaddr_invalid_count</c> (breaks vaddr-invalid-count).</summary>
    public void SetVaddrInvalidCountForTest(int value)
    {
        using (ctx.Lock.EnterScope())
        {
            tree.SetVaddrInvalidCountForTestLocked(value);
        }
    }

    /// <summary>Test hook: the mapping loses its dirty bitmap while tracking runs (breaks dirty-bitmaps-present).</summary>
    public void DropBitmapForTest(ulong iova)
    {
        using (ctx.Lock.EnterScope())
        {
            FindDmaOrThrowLocked(iova).Bitmap = null;
        }
    }

    /// <summary>Test hook: overwrites <c>num_non_pinned_groups</c> (breaks non-pinned-groups-count).</summary>
    public void SetNumNonPinnedGroupsForTest(int value)
    {
        using (ctx.Lock.EnterScope())
        {
            domains.SetNumNonPinnedGroupsForTestLocked(value);
        }
    }

    /// <summary>Test hook: replaces the valid IOVA windows as given, unchecked (breaks mapping-in-iova-range when
    /// a mapping falls outside, the windows are unsorted or overlapping, or one covers a reserved hole).</summary>
    public void SetIovaListForTest(IEnumerable<ByteRange> windows)
    {
        using (ctx.Lock.EnterScope())
        {
            iovaWindows.SetForTestLocked(windows);
        }
    }

    /// <summary>Test hook: overwrites <c>pgsize_bitmap</c> (breaks pgsize-bitmap).</summary>
    public void SetPgsizeBitmapForTest(ulong bitmap)
    {
        using (ctx.Lock.EnterScope())
        {
            domains.SetPgsizeBitmapForTestLocked(bitmap);
        }
    }

    /// <summary>Test hook: the group is listed among the emulated groups too, in pinned-page scope
    /// (breaks group-attached-once when it already sits in a domain).</summary>
    public void ListAsEmulatedForTest(VfioGroup group)
    {
        using (ctx.Lock.EnterScope())
        {
            domains.AddEmulatedLocked(group);
        }
    }

    private VfioDma FindDmaOrThrowLocked(ulong iova) =>
        tree.FindLocked(new Iova(iova)) ?? throw new ArgumentException($"no mapping at 0x{iova:x}", nameof(iova));

    // Unmaps the mapping's IOPTEs from one domain and maps them back with the host page at `page`
    // translating to `phys`; the IOMMU picks page sizes afresh.
    private void RewritePageLocked(IommuDomain domain, VfioDma dma, ulong page, PhysAddr phys, bool deferred)
    {
        ctx.AssertLocked();
        IReadOnlyList<MappedRun> runs = domain.MappedRuns(dma.Range);
        ulong unmapped = deferred ? domain.UnmapDeferred(dma.Iova, dma.Size) : domain.Unmap(dma.Iova, dma.Size);
        System.Diagnostics.Debug.Assert(unmapped == dma.Size, "the mapping was wholly translated");
        ulong pageLast = page + (ctx.PageSize - 1);
        foreach (MappedRun r in runs)
        {
            if (!r.Iova.Contains(page))
            {
                domain.Map(new Iova(r.Iova.Start), r.Phys, r.Iova.Size, r.Prot);
                continue;
            }
            if (page > r.Iova.Start)
            {
                domain.Map(new Iova(r.Iova.Start), r.Phys, page - r.Iova.Start, r.Prot);
            }
            domain.Map(new Iova(page), phys, ctx.PageSize, r.Prot);
            if (pageLast < r.Iova.Last)
            {
                domain.Map(new Iova(pageLast + 1), new PhysAddr(r.Phys.Value + (pageLast + 1 - r.Iova.Start)), r.Iova.Last - pageLast, r.Prot);
            }
        }
    }
}
