using System.Numerics;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// The IOMMU side of one type1 container: its domains (<c>iommu-&gt;domain_list</c>, newest first, each a
/// <see cref="VfioDomain"/> with its groups), its emulated groups (<c>emulated_iommu_groups</c>), the valid IOVA windows
/// (<c>iova_list</c>), the page sizes offered (<c>pgsize_bitmap</c>) and <c>num_non_pinned_groups</c>; the steps of
/// <c>vfio_iommu_type1_attach_group</c> and <c>detach_group</c> on them (allocate, attach, check, reuse, free,
/// rebuild the windows), and <c>vfio_iommu_map</c> and the domain half of <c>vfio_unmap_unpin</c>.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects every field and each domain's group
/// list; every <c>*Locked</c> member asserts it. Lock order below it: the IOMMU group's and domain's own locks.
/// Replaying the mappings into a new domain is <see cref="DomainReplay"/>'s; removing them when the last domain goes,
/// and the dirty bitmaps' answer to a page-size change, are the caller's (<see cref="VfioIommu"/>), which orders the
/// steps as the kernel does.
/// </remarks>
internal sealed class DomainSet(Type1Context ctx, IovaWindows windows)
{
    private readonly List<VfioDomain> _domains = [];
    private readonly List<Type1Group> _emulatedGroups = [];
    // The sub-PAGE_SIZE RFC (seed 000) started from all ones rather than PAGE_MASK.
    private ulong _pgsizeBitmap = ctx.Behavior.SubpageIommuPages ? ulong.MaxValue : ~(ctx.PageSize - 1);
    private int _numNonPinnedGroups;

    /// <summary>The domains, newest first (the first answers lookups and unmaps last).</summary>
    public IReadOnlyList<VfioDomain> DomainsLocked
    {
        get
        {
            ctx.AssertLocked();
            return _domains;
        }
    }

    /// <summary>The emulated (mdev) groups.</summary>
    public IReadOnlyList<Type1Group> EmulatedGroupsLocked
    {
        get
        {
            ctx.AssertLocked();
            return _emulatedGroups;
        }
    }

    /// <summary>How many times the domains' page-table locks have been taken, summed (the checker's hand-over counts,
    /// <see cref="Type1Context.EntriesForCheckLocked"/>). Read twice per MAP_DMA while a checker watches, so the list is
    /// read as the list it is (no interface call per element) and the lock is asserted in debug builds only, as its
    /// callers assert it on entry (issue 16: through <see cref="DomainsLocked"/> it was ~2 % of the checked 65,535-call
    /// run's CPU, a thread-id read and two interface calls a time).</summary>
    public int LockEntriesForCheckLocked()
    {
        System.Diagnostics.Debug.Assert(ctx.Lock.IsHeldByCurrentThread);
        List<VfioDomain> domains = _domains;
        int sum = 0;
        for (int i = 0; i < domains.Count; i++)
        {
            sum += domains[i].Domain.LockEntriesForCheck;
        }
        return sum;
    }

    /// <summary>Whether the container has an IOMMU domain (MAP pins and maps only then).</summary>
    public bool HasDomainLocked => DomainsLocked.Count > 0;

    /// <summary>The page sizes offered to the user (<c>pgsize_bitmap</c>, spec §2.6).</summary>
    public ulong PgsizeBitmapLocked
    {
        get
        {
            ctx.AssertLocked();
            return _pgsizeBitmap;
        }
    }

    /// <summary>The granularity type1 enforces (<c>pgsize</c>): MAP/UNMAP alignment and dirty-bitmap granularity. Today
    /// the smallest advertised size, never below PAGE_SIZE after folding; under quirk <c>subpage-iommu-pages</c> the RFC's
    /// <c>requested_alignment</c>: PAGE_SIZE when the smallest advertised size is below it (seed 000).</summary>
    public ulong MinPageSizeLocked => ctx.Behavior.SubpageIommuPages ? Math.Max(AdvertisedMinPageSizeLocked, ctx.PageSize) : AdvertisedMinPageSizeLocked;

    /// <summary>The smallest size of <c>pgsize_bitmap</c> as GET_INFO reports it (the migration capability's page size).</summary>
    public ulong AdvertisedMinPageSizeLocked => 1UL << BitOperations.TrailingZeroCount(PgsizeBitmapLocked);

    /// <summary><c>num_non_pinned_groups</c>: IOMMU-backed groups outside pinned-page dirty scope, which could have
    /// written anywhere, so every page of an IOMMU-mapped mapping counts as dirty.</summary>
    public int NumNonPinnedGroupsLocked
    {
        get
        {
            ctx.AssertLocked();
            return _numNonPinnedGroups;
        }
    }

    /// <summary>Whether every domain enforces cache coherency (CHECK_EXTENSION DMA_CC_IOMMU; true with none).</summary>
    public bool AllEnforceCacheCoherencyLocked()
    {
        ctx.AssertLocked();
        return _domains.TrueForAll(d => d.EnforceCacheCoherency);
    }

    /// <summary>The container's entry for <paramref name="group"/>, emulated or in a domain, or null.</summary>
    public Type1Group? FindGroupLocked(VfioGroup group)
    {
        ctx.AssertLocked();
        Type1Group? g = _emulatedGroups.Find(x => ReferenceEquals(x.Group, group));
        if (g is not null)
        {
            return g;
        }
        foreach (VfioDomain d in _domains)
        {
            g = d.Groups.Find(x => ReferenceEquals(x.Group, group));
            if (g is not null)
            {
                return g;
            }
        }
        return null;
    }

    /// <summary>An emulated (mdev) group joins; it starts in pinned-page dirty scope.</summary>
    public void AddEmulatedLocked(VfioGroup group)
    {
        ctx.AssertLocked();
        _emulatedGroups.Add(new Type1Group(group, null, pinnedPageDirtyScope: true));
    }

    /// <summary>
    /// Steps 2-10 of vfio_iommu_type1_attach_group for an IOMMU-backed group: a new domain is allocated and the group
    /// attached to it (the IOMMU core's errors), the apertures and reserved regions checked against the mappings and
    /// the windows (EINVAL, or EPERM without isolated MSI unless <c>allow_unsafe_interrupts</c>), then a compatible
    /// domain (same driver, same coherency) is reused when the group attaches to it: the attach is complete and
    /// <paramref name="pending"/> null. Otherwise <paramref name="pending"/> holds the new domain with the group
    /// attached, not yet listed, for the caller to replay the mappings into and then
    /// <see cref="CompleteAttachLocked"/> or <see cref="AbandonAttachLocked"/>. A failure leaves everything as before.
    /// </summary>
    public Errno AttachIommuGroupLocked(VfioGroup group, IommuGroup iommuGroup, Process? current, out PendingAttach? pending)
    {
        ctx.AssertLocked();
        pending = null;
        Errno e = iommuGroup.TryAllocateDomain(out IommuDomain? allocated);
        if (e != Errno.None)
        {
            return e;
        }
        IommuDomain domain = allocated!;
        e = iommuGroup.Attach(domain);
        if (e != Errno.None)
        {
            domain.Free();
            return e;
        }
        e = windows.CheckAttachLocked(iommuGroup, domain, out IovaList candidate);
        if (e == Errno.None && !iommuGroup.IsolatedMsi && !ctx.Behavior.AllowUnsafeInterrupts)
        {
            e = Refusals.Refuse(Errno.EPERM, "vfio_iommu_type1_attach_group",
                "group {0} has no isolated MSI (interrupt remapping) and allow_unsafe_interrupts is off", (ulong)iommuGroup.Id);
        }
        if (e != Errno.None)
        {
            iommuGroup.Detach();
            domain.Free();
            return e;
        }
        bool enforce = domain.TryEnforceCacheCoherency();
        var entry = new Type1Group(group, iommuGroup, pinnedPageDirtyScope: false);

        // A compatible domain (same driver, same coherency) already holds every mapping: reuse it.
        foreach (VfioDomain existing in _domains)
        {
            if (existing.Domain.OpsName != domain.OpsName || existing.EnforceCacheCoherency != enforce)
            {
                continue;
            }
            iommuGroup.Detach();
            if (iommuGroup.Attach(existing.Domain) == Errno.None)
            {
                domain.Free();
                existing.Groups.Add(entry);
                FinishAttachLocked(candidate, current, group, existing.Domain, reused: true);
                return Errno.None;
            }
            e = iommuGroup.Attach(domain);
            if (e != Errno.None)
            {
                domain.Free();
                return e;
            }
        }
        pending = new PendingAttach(new VfioDomain(domain, enforce), entry, candidate);
        return Errno.None;
    }

    /// <summary>The new domain, with every mapping replayed into it, joins the list first with its group; the page
    /// sizes are recomputed and the windows narrowed.</summary>
    public void CompleteAttachLocked(PendingAttach pending, Process? current)
    {
        ctx.AssertLocked();
        pending.Domain.Groups.Add(pending.Entry);
        _domains.Insert(0, pending.Domain);
        UpdatePgsizeBitmapLocked();
        FinishAttachLocked(pending.Candidate, current, pending.Entry.Group, pending.Domain.Domain, reused: false);
    }

    /// <summary>The replay failed (and unwound itself): the group leaves the new domain and the domain is freed.</summary>
    public void AbandonAttachLocked(PendingAttach pending)
    {
        ctx.AssertLocked();
        pending.Entry.IommuGroup!.Detach();
        pending.Domain.Domain.Free();
    }

    /// <summary>An emulated group leaves; false when <paramref name="group"/> is not one.
    /// <paramref name="leftDirtyScope"/>: it was outside pinned-page scope, so <c>num_non_pinned_groups</c> must
    /// drop (<see cref="LeaveNonPinnedLocked"/>).</summary>
    public bool RemoveEmulatedLocked(VfioGroup group, out bool leftDirtyScope)
    {
        ctx.AssertLocked();
        leftDirtyScope = false;
        Type1Group? emulated = _emulatedGroups.Find(g => ReferenceEquals(g.Group, group));
        if (emulated is null)
        {
            return false;
        }
        leftDirtyScope = !emulated.PinnedPageDirtyScope;
        _emulatedGroups.Remove(emulated);
        return true;
    }

    /// <summary>The IOMMU group leaves its domain (detached from it in the IOMMU core). Returns the domain when that
    /// left it without groups: still listed, for the caller to take the mappings out of it before
    /// <see cref="FreeDomainLocked"/>. <paramref name="leftDirtyScope"/> as for <see cref="RemoveEmulatedLocked"/>.</summary>
    public VfioDomain? DetachIommuGroupLocked(VfioGroup group, out bool leftDirtyScope)
    {
        ctx.AssertLocked();
        leftDirtyScope = false;
        foreach (VfioDomain d in _domains)
        {
            Type1Group? entry = d.Groups.Find(g => ReferenceEquals(g.Group, group));
            if (entry is null)
            {
                continue;
            }
            entry.IommuGroup!.Detach();
            leftDirtyScope = !entry.PinnedPageDirtyScope;
            d.Groups.Remove(entry);
            return d.Groups.Count == 0 ? d : null;
        }
        return null;
    }

    /// <summary>An empty domain is freed and unlisted; the page sizes are recomputed.</summary>
    public void FreeDomainLocked(VfioDomain domain)
    {
        ctx.AssertLocked();
        System.Diagnostics.Debug.Assert(domain.Groups.Count == 0, "only an empty domain is freed");
        domain.Domain.Free();
        _domains.Remove(domain);
        UpdatePgsizeBitmapLocked();
    }

    /// <summary>A group outside pinned-page scope left: <c>num_non_pinned_groups</c> drops.</summary>
    public void LeaveNonPinnedLocked()
    {
        ctx.AssertLocked();
        _numNonPinnedGroups--;
    }

    /// <summary>A device of <paramref name="group"/> pinned pages (pin_pages): the group enters pinned-page dirty scope,
    /// so it no longer counts as writing anywhere.</summary>
    public void EnterPinnedScopeLocked(Type1Group group)
    {
        ctx.AssertLocked();
        if (!group.PinnedPageDirtyScope)
        {
            group.PinnedPageDirtyScope = true;
            _numNonPinnedGroups--;
        }
    }

    /// <summary>Release, after every mapping went: every group leaves its domain, every domain is freed, the windows
    /// and scope count are reset. The emulated groups went first (<see cref="ClearEmulatedLocked"/>).</summary>
    public void ReleaseLocked()
    {
        ctx.AssertLocked();
        foreach (VfioDomain d in _domains)
        {
            foreach (Type1Group g in d.Groups)
            {
                g.IommuGroup!.Detach();
            }
            d.Groups.Clear();
            d.Domain.Free();
        }
        _domains.Clear();
        windows.ResetLocked();
        _numNonPinnedGroups = 0;
    }

    /// <summary>Release's first step: the emulated groups are forgotten.</summary>
    public void ClearEmulatedLocked()
    {
        ctx.AssertLocked();
        _emulatedGroups.Clear();
    }

    /// <summary>
    /// vfio_iommu_map for each of one GUP batch's <paramref name="chunks"/> (physical ranges) at consecutive IOVAs from
    /// <paramref name="iova"/>: every domain takes the whole batch in one call (<see cref="IommuDomain.MapChunks"/>)
    /// instead of one call per chunk and domain. The kernel maps a chunk into every domain before the next chunk; the
    /// end state is the same, and a failure returns the error and leaves what the kernel's would: the chunks before the
    /// first failing one in the kernel's order (<paramref name="mapped"/> of them) in every domain, the failing one and
    /// those after it in none (unmapped again from the domains that took them). Returns the IOMMU driver's error, or
    /// <see cref="Errno.None"/>.
    /// </summary>
    public Errno MapChunksLocked(Iova iova, ReadOnlySpan<ByteRange> chunks, IommuProt prot, out int mapped)
    {
        ctx.AssertLocked();
        // The kernel's first failure is the lowest chunk that fails in any domain, and in the first such domain in list
        // order. Each domain is asked only for the chunks before the lowest failure found so far, so a later domain's
        // failure at an earlier chunk takes over; how far each domain got is kept to trim them all to the winner.
        int count = _domains.Count;
        if (count == 1)
        {
            // One domain (the common case, and every 4 KiB map): what it refuses is the first failure, nothing to trim.
            return _domains[0].Domain.MapChunks(iova, chunks, prot | IommuProt.Cache, out mapped);
        }
        Span<int> reached = count <= 16 ? stackalloc int[count] : new int[count];
        reached.Clear();
        int limit = chunks.Length;
        Errno error = Errno.None;
        for (int i = 0; i < count && limit > 0; i++)
        {
            Errno e = _domains[i].Domain.MapChunks(iova, chunks[..limit], prot | IommuProt.Cache, out int done);
            reached[i] = done;
            if (e != Errno.None)
            {
                error = e;
                limit = done;
            }
        }
        mapped = limit;
        if (error == Errno.None)
        {
            return Errno.None;
        }
        ulong kept = 0;
        for (int k = 0; k < limit; k++)
        {
            kept += chunks[k].Size;
        }
        for (int j = count - 1; j >= 0; j--)
        {
            ulong extra = 0;
            for (int k = limit; k < reached[j]; k++)
            {
                extra += chunks[k].Size;
            }
            if (extra != 0)
            {
                _domains[j].Domain.Unmap(iova.Plus(kept), extra);
            }
        }
        return error;
    }

    /// <summary>
    /// The first half of vfio_unmap_unpin: the mapping's translations go from every domain but the first (one
    /// <c>iommu_unmap</c> each). Then <see cref="UnmapFirstBatchLocked"/> takes them from the first, a bounded batch at
    /// a time. Needs a domain and a pinned part.
    /// </summary>
    public void UnmapOthersLocked(VfioDma dma)
    {
        ctx.AssertLocked();
        for (int i = 1; i < _domains.Count; i++)
        {
            _domains[i].Domain.Unmap(dma.Iova, dma.Size);
        }
    }

    /// <summary>
    /// vfio_unmap_unpin's IOMMU side for a mapping that is one IOPTE run of the only domain (every 4 KiB unmap): the run
    /// leaves the table with its flush (<see cref="IommuDomain.TryUnmapOneRunSync"/>) and <paramref name="phys"/> is what
    /// it translated, as <see cref="TryUnmapFirstBatchStreamedLocked"/> would hand it to its sink. False, with nothing
    /// done, with more than one domain, while tracing, or when the mapping is not one whole run.
    /// </summary>
    public bool TryUnmapOnlyRunLocked(VfioDma dma, out PhysAddr phys)
    {
        ctx.AssertLocked();
        if (_domains.Count != 1)
        {
            phys = default;
            return false;
        }
        return _domains[0].Domain.TryUnmapOneRunSync(dma.MappedRange, out phys);
    }

    /// <summary>
    /// The streamed half of vfio_unmap_unpin: up to <paramref name="maxRuns"/> of the first domain's runs from
    /// <paramref name="cursor"/> (an IOVA of the mapping) on are unmapped with deferred IOTLB invalidation, which is
    /// then flushed; <paramref name="firstDomainRuns"/> gets what they translated, for the caller to unpin now that no
    /// domain can reach it (spec §3.5), and <paramref name="cursor"/> moves past them; <paramref name="more"/> tells
    /// whether runs may be left for another call. False when nothing was left.
    /// The kernel walks the first domain page by page and flushes every 512 regions (unmap_unpin_fast); a batch here is
    /// a bound on the runs held at once, so an unmap of memory shattered into 1-page runs holds a batch, not the whole
    /// mapping's runs (issue 16: 140 MB per 4 GiB), with the same pins, charges and ordering guarantee.
    /// </summary>
    public bool UnmapFirstBatchLocked(VfioDma dma, ref ulong cursor, int maxRuns, List<MappedRun> firstDomainRuns, out bool more)
    {
        ctx.AssertLocked();
        ByteRange range = dma.MappedRange;
        more = false;
        if (cursor > range.Last || cursor < range.Start)
        {
            return false;
        }
        // Collect, unmap stretch by stretch (holes split the batch, as the kernel skips them page by page) and sync,
        // in one hold of the domain's lock (issue 16's 4 KiB pair: three round trips before).
        _domains[0].Domain.CollectUnmapSync(new ByteRange(cursor, range.Last), firstDomainRuns, maxRuns);
        if (firstDomainRuns.Count == 0)
        {
            return false;
        }
        more = Advance(ref cursor, firstDomainRuns[^1].Iova.Last, firstDomainRuns.Count, maxRuns, range.Last);
        return true;
    }

    // Past a batch of `taken` runs ending at `last`: the cursor moved on, and whether another batch may follow.
    private static bool Advance(ref ulong cursor, ulong last, int taken, int maxRuns, ulong rangeLast)
    {
        // A run ending at 2^64-1 ends the mapping too; the next call then finds it gone.
        cursor = last == ulong.MaxValue ? last : last + 1;
        // A short batch took the rest: no second look (a lock round trip of the domain's, in every 4 KiB unmap).
        return taken == maxRuns && last < rangeLast;
    }

    /// <summary>
    /// <see cref="UnmapFirstBatchLocked"/> with the runs handed to <paramref name="sink"/> as the first domain's table is
    /// read (<see cref="IommuDomain.TryUnmapSyncStreamed"/>) instead of collected into a list: the same runs unmapped, the
    /// same flush, the same <paramref name="cursor"/> and <paramref name="more"/>. <paramref name="took"/> is what
    /// <see cref="UnmapFirstBatchLocked"/> would return. False, with nothing done, where the domain declines (tracing, a
    /// run straddling the cursor): the caller then takes <see cref="UnmapFirstBatchLocked"/> for this batch.
    /// </summary>
    public bool TryUnmapFirstBatchStreamedLocked<TSink>(VfioDma dma, ref ulong cursor, int maxRuns, ref TSink sink, out bool took, out bool more)
        where TSink : struct, IUnmappedRunSink
    {
        ctx.AssertLocked();
        ByteRange range = dma.MappedRange;
        took = false;
        more = false;
        if (cursor > range.Last || cursor < range.Start)
        {
            return true;
        }
        if (!_domains[0].Domain.TryUnmapSyncStreamed(new ByteRange(cursor, range.Last), maxRuns, ref sink, out int taken, out ulong last))
        {
            return false;
        }
        if (taken == 0)
        {
            return true;
        }
        took = true;
        more = Advance(ref cursor, last, taken, maxRuns, range.Last);
        return true;
    }

    /// <summary>The domains as the snapshot copies them (groups, page-table runs, pending invalidations); with
    /// <paramref name="span"/>, only the runs overlapping it, clipped to it.</summary>
    public List<VfioDomainSnapshot> SnapshotDomainsLocked(ByteRange? span = null)
    {
        ctx.AssertLocked();
        var domains = new List<VfioDomainSnapshot>(_domains.Count);
        foreach (VfioDomain d in _domains)
        {
            domains.Add(new VfioDomainSnapshot(d.Domain, d.EnforceCacheCoherency, d.Groups.ConvertAll(GroupSnapshot),
                d.Domain.MappedRuns(span), d.Domain.PendingInvalidations()));
        }
        return domains;
    }

    /// <summary>The emulated groups as the snapshot copies them.</summary>
    public List<Type1GroupSnapshot> SnapshotEmulatedLocked()
    {
        ctx.AssertLocked();
        return _emulatedGroups.ConvertAll(GroupSnapshot);
    }

    /// <summary>Test hook (lock held): overwrites <c>pgsize_bitmap</c> (breaks pgsize-bitmap).</summary>
    public void SetPgsizeBitmapForTestLocked(ulong bitmap)
    {
        ctx.AssertLocked();
        _pgsizeBitmap = bitmap;
    }

    /// <summary>Test hook (lock held): overwrites <c>num_non_pinned_groups</c> (breaks non-pinned-groups-count).</summary>
    public void SetNumNonPinnedGroupsForTestLocked(int value)
    {
        ctx.AssertLocked();
        _numNonPinnedGroups = value;
    }

    private static Type1GroupSnapshot GroupSnapshot(Type1Group g) => new(g.Group, g.IommuGroup, g.PinnedPageDirtyScope);

    private void FinishAttachLocked(IovaList candidate, Process? current, VfioGroup group, IommuDomain domain, bool reused)
    {
        ctx.AssertLocked();
        windows.InstallLocked(candidate);
        _numNonPinnedGroups++;
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.AttachGroup, current, TraceLog.F("group", group.Number), TraceLog.F("domain", domain.Name), TraceLog.F("reused", reused),
                TraceLog.F("pgsizes", PageSizeBitmap.Format(_pgsizeBitmap)));
        }
    }

    /// <summary>vfio_update_pgsize_bitmap: the AND of every domain's sizes, with sizes below PAGE_SIZE folded
    /// into PAGE_SIZE (seed 000: pinning and accounting are per PAGE_SIZE page); PAGE_MASK with no domain.
    /// Quirk <c>subpage-iommu-pages</c> skips the fold, as the 2015 RFC did: all ones with no domain.</summary>
    private void UpdatePgsizeBitmapLocked()
    {
        ctx.AssertLocked();
        ulong bitmap = ulong.MaxValue;
        foreach (VfioDomain d in _domains)
        {
            bitmap &= d.Domain.PgsizeBitmap;
        }
        _pgsizeBitmap = ctx.Behavior.SubpageIommuPages ? bitmap : PageSizeBitmap.FoldSubPageSizes(bitmap, ctx.PageSize);
    }

    /// <summary>A new domain between its allocation and its listing: the group attached to it, and the windows it will
    /// leave.</summary>
    /// <param name="Domain">The new domain, group attached, not listed.</param>
    /// <param name="Entry">The group's entry.</param>
    /// <param name="Candidate">The windows once it is listed.</param>
    public sealed record PendingAttach(VfioDomain Domain, Type1Group Entry, IovaList Candidate);
}
