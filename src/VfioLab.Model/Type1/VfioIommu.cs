using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// One container's type1 backend (struct vfio_iommu and the ops of <c>vfio_iommu_driver_ops_type1</c>,
/// drivers/vfio/vfio_iommu_type1.c): the container ioctls, attach_group, detach_group, release and the mediated-device
/// interface, each handed to the part that owns the state: <see cref="DmaMapUnmap"/> (MAP, UNMAP),
/// <see cref="DirtyTracker"/> (DIRTY_PAGES), <see cref="Type1Info"/> (GET_INFO), <see cref="DomainSet"/> and
/// <see cref="DomainReplay"/> (attach, detach), <see cref="ExternalPins"/> and <see cref="UnmapNotifier"/> (mdev).
/// </summary>
/// <remarks>
/// Lock: <see cref="Type1Context.Lock"/> (<c>iommu-&gt;lock</c>, rank <see cref="LockRank.Type1"/>), one lock for every
/// part; each part states the fields it protects. Lock order: the container's group lock, (a vendor driver's lock,)
/// this lock, an address space's mmap lock (pinning, accounting), then the IOMMU domains' and host memory's own locks.
/// The unmap notification releases this lock around the drivers' callbacks. Never change: the parts, the context. The
/// public surface is the three core interfaces plus inspection (<see cref="Snapshot()"/>, <see cref="VisitDirtyBitmaps"/>,
/// the counters) and <see cref="TestHooks"/>.
/// </remarks>
internal sealed partial class VfioIommu : IVfioIommu, IVfioIommuInspection, IVfioIommuPinning
{
    private readonly Type1Context _ctx;
    private readonly DmaTree _tree;
    private readonly IovaWindows _windows;
    private readonly DomainSet _domains;
    private readonly LockedMemoryAccounting _accounting;
    private readonly DeviceMemoryHolds _holds;
    private readonly PfnmapTranslation _pfnmap;
    private readonly DmaPinning _pinning;
    private readonly DomainReplay _replay;
    private readonly DirtyTracker _dirty;
    private readonly UnmapNotifier _notifier;
    private readonly ExternalPins _external;
    private readonly DmaMapUnmap _dma;
    private readonly Type1Info _info;

    public VfioIommu(Machine machine, Type1Behavior behavior, bool v2, int containerId)
    {
        _ctx = new Type1Context(machine, behavior, v2, containerId);
        _tree = new DmaTree(_ctx);
        _windows = new IovaWindows(_ctx, _tree);
        _domains = new DomainSet(_ctx, _windows);
        _ctx.DomainsForCheck = _domains; // the checker's hand-over counts (Type1Context.DeclareLinked, issue 16)
        _accounting = new LockedMemoryAccounting(_ctx);
        // A device's release removes the mappings of its memory (vfio_remove_dma: _dma's, set below before any
        // mapping can hold a device).
        _holds = new DeviceMemoryHolds(_ctx, dma => _dma!.RemoveLocked(dma));
        _pfnmap = new PfnmapTranslation(_ctx, _holds);
        _pinning = new DmaPinning(_ctx, _accounting, _pfnmap, _domains);
        _replay = new DomainReplay(_ctx, _tree, _domains, _pinning);
        _dirty = new DirtyTracker(_ctx, _tree, _domains);
        _notifier = new UnmapNotifier(_ctx);
        _external = new ExternalPins(_ctx, _tree, _domains, _pinning, _pfnmap, _accounting, _dirty, _notifier);
        _dma = new DmaMapUnmap(_ctx, _tree, _windows, _domains, _pinning, _accounting, _dirty, _notifier, _holds);
        _info = new Type1Info(_ctx, _tree, _windows, _domains);
        TestHooks = new Type1TestHooks(_ctx, _tree, _windows, _domains, _holds);
    }

    /// <summary>The host (memory, processes, trace, fault sites).</summary>
    public Machine Machine => _ctx.Machine;

    /// <summary>Version switches and module parameters.</summary>
    public Type1Behavior Behavior => _ctx.Behavior;

    /// <summary>TYPE1v2 semantics: strict unmap, dirty tracking, external pinning.</summary>
    public bool V2 => _ctx.V2;

    /// <inheritdoc />
    public ulong MappingCount
    {
        get { using (_ctx.Lock.EnterScope()) { return (ulong)_tree.CountLocked; } }
    }

    /// <inheritdoc />
    public ulong DmaAvail
    {
        get { using (_ctx.Lock.EnterScope()) { return _tree.DmaAvailLocked; } }
    }

    /// <summary>The page sizes offered to the user (<c>pgsize_bitmap</c>, spec §2.6).</summary>
    public ulong PgsizeBitmap
    {
        get { using (_ctx.Lock.EnterScope()) { return _domains.PgsizeBitmapLocked; } }
    }

    /// <summary>The valid IOVA windows (empty: no restriction).</summary>
    public IReadOnlyList<ByteRange> IovaRanges
    {
        get { using (_ctx.Lock.EnterScope()) { return _windows.ListLocked.Ranges; } }
    }

    /// <summary>Translations of PFNMAP addresses made so far (device operations, page-table walks or vm_pgoff
    /// sums): each yields a whole VMA remainder or page-table block, so a BAR costs one or a few.</summary>
    public ulong PfnmapLookups
    {
        get { using (_ctx.Lock.EnterScope()) { return _pfnmap.LookupsLocked; } }
    }

    /// <summary>The hooks that break one invariant each, for the checker's tests.</summary>
    internal Type1TestHooks TestHooks { get; }

    /// <inheritdoc />
    public long CheckExtension(ulong extension)
    {
        using (_ctx.Lock.EnterScope())
        {
            return extension switch
            {
                VfioExtension.Type1Iommu or VfioExtension.Type1v2Iommu or VfioExtension.UnmapAll => 1,
                // Advertised until 35890f85573c (v6.13).
                VfioExtension.Type1NestingIommu => _ctx.Behavior.NestingIommuExtension ? 1 : 0,
                // ef3a3f6a294b (v6.3): live update is refused while mediated devices could pin.
                VfioExtension.UpdateVaddr => _domains.EmulatedGroupsLocked.Count == 0 ? 1 : 0,
                VfioExtension.DmaCcIommu => _domains.AllEnforceCacheCoherencyLocked() ? 1 : 0,
                _ => 0,
            };
        }
    }

    /// <inheritdoc />
    /// <remarks>MAP and UNMAP widen the checker's journal themselves, under the lock they take anyway
    /// (<see cref="DmaMapUnmap"/>).</remarks>
    public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument) => IoctlDispatch(context, request, ref argument);

    private long IoctlDispatch(VfioCallContext context, uint request, ref IoctlArgument argument) => request switch
    {
        VfioIoctl.IommuGetInfo => _info.GetInfo(ref argument).AsReturn(),
        VfioIoctl.IommuMapDma => _dma.MapDmaIoctl(context, ref argument).AsReturn(),
        VfioIoctl.IommuUnmapDma => _dma.UnmapDmaIoctl(context, ref argument).AsReturn(),
        VfioIoctl.IommuDirtyPages => _dirty.DirtyPagesIoctl(context, ref argument).AsReturn(),
        _ => Refusals.RefuseReturn(Errno.ENOTTY, "vfio_iommu_type1_ioctl", "request 0x{0:x} is not a type1 ioctl", request),
    };

    /// <summary>
    /// vfio_iommu_type1_attach_group: EBUSY (vaddrs invalidated), EINVAL (already attached, aperture or
    /// reserved-region conflict with existing mappings, no valid IOVA left), ENOMEM (the group's entry, fault site
    /// <c>type1_group_alloc</c>), EPERM (no isolated MSI and <c>allow_unsafe_interrupts</c> off), the IOMMU core's
    /// allocation or attach error, or a replay error (pinning from <paramref name="current"/>'s mm, as Linux does).
    /// Any failure leaves everything as before.
    /// </summary>
    public Errno AttachGroup(VfioGroup group, Process? current)
    {
        using (_ctx.Lock.EnterScope())
        {
            if (_tree.VaddrInvalidCountLocked > 0)
            {
                return Refusals.Refuse(Errno.EBUSY, "vfio_iommu_type1_attach_group", "{0} mapping(s) have an invalidated vaddr (VFIO_UPDATE_VADDR in progress)",
                    (ulong)_tree.VaddrInvalidCountLocked);
            }
            if (_domains.FindGroupLocked(group) is not null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_attach_group", "group {0} is already attached to this container", (ulong)group.Number);
            }
            // kzalloc of the struct vfio_iommu_group, for an emulated (mdev) group as for a physical one.
            if (_ctx.Faults.ShouldFail(FaultSite.Type1GroupAlloc))
            {
                return Refusals.Refuse(Errno.ENOMEM, "vfio_iommu_type1_attach_group", "allocating the vfio_iommu_group of group {0} failed (injected)", (ulong)group.Number);
            }
            IommuGroup? iommuGroup = group.Backing.IommuGroup;
            if (group.Type == VfioGroupType.EmulatedIommu || iommuGroup is null || iommuGroup.IsEmulated)
            {
                _domains.AddEmulatedLocked(group);
                if (_ctx.Trace.Enabled)
                {
                    _ctx.Emit(TraceKind.AttachGroup, current, TraceLog.F("group", group.Number), TraceLog.F("emulated", true));
                }
                return Errno.None;
            }
            Errno e = _domains.AttachIommuGroupLocked(group, iommuGroup, current, out DomainSet.PendingAttach? pending);
            if (e != Errno.None || pending is null)
            {
                return e;
            }
            e = _replay.ReplayLocked(pending.Domain, current);
            if (e != Errno.None)
            {
                _domains.AbandonAttachLocked(pending);
                return e;
            }
            _domains.CompleteAttachLocked(pending, current);
            _dirty.OnPageSizesChangedLocked();
            return Errno.None;
        }
    }

    /// <summary>
    /// vfio_iommu_type1_detach_group: an emulated group leaves (the last group of an empty container takes
    /// every mapping with it); an IOMMU group leaves its domain, and an empty domain is freed: the last one
    /// takes every mapping with it, or, with emulated groups left, re-accounts the mappings to their external
    /// pins. The IOVA windows widen and the page sizes are recomputed. A group outside pinned-page scope
    /// leaving while tracking marks every page dirty. Never fails.
    /// </summary>
    public void DetachGroup(VfioGroup group)
    {
        using (_ctx.Lock.EnterScope())
        {
            if (_domains.RemoveEmulatedLocked(group, out bool leftDirtyScope))
            {
                if (_domains.EmulatedGroupsLocked.Count == 0 && !_domains.HasDomainLocked)
                {
                    _dma.RemoveAllLocked();
                }
            }
            else
            {
                bool hadWindows = !_windows.ListLocked.IsEmpty;
                VfioDomain? emptied = _domains.DetachIommuGroupLocked(group, out leftDirtyScope);
                if (emptied is not null)
                {
                    if (_domains.DomainsLocked.Count == 1)
                    {
                        if (_domains.EmulatedGroupsLocked.Count == 0)
                        {
                            _dma.RemoveAllLocked();
                        }
                        else
                        {
                            _external.ReaccountToExternalPinsLocked();
                        }
                    }
                    _domains.FreeDomainLocked(emptied);
                    _dirty.OnPageSizesChangedLocked();
                }
                if (hadWindows)
                {
                    _windows.RebuildLocked(_domains.DomainsLocked, domainFreed: emptied is not null);
                }
            }
            if (leftDirtyScope)
            {
                _domains.LeaveNonPinnedLocked();
                _dirty.MarkAllDirtyLocked();
            }
            if (_ctx.Trace.Enabled)
            {
                _ctx.Emit(TraceKind.DetachGroup, null, TraceLog.F("group", group.Number));
            }
        }
    }

    /// <summary>vfio_iommu_type1_release: every mapping goes, then every domain; the container returns to
    /// having no backend.</summary>
    public void Release()
    {
        using (_ctx.Lock.EnterScope())
        {
            _domains.ClearEmulatedLocked();
            _dma.RemoveAllLocked();
            _domains.ReleaseLocked();
            _dirty.ResetLocked();
            _notifier.ResetLocked();
            if (_ctx.Trace.Enabled)
            {
                _ctx.Emit(TraceKind.Release, null);
            }
        }
    }

    /// <inheritdoc />
    public void RegisterDevice(VfioDevice device) => _notifier.RegisterDevice(device);

    /// <inheritdoc />
    public void UnregisterDevice(VfioDevice device) => _notifier.UnregisterDevice(device);

    /// <inheritdoc />
    public bool UsesNotifierChain => _notifier.UsesNotifierChain;

    /// <inheritdoc />
    /// <remarks>See <see cref="ExternalPins.PinPages"/> for every errno.</remarks>
    public long PinPages(VfioDevice device, ulong iova, int npage, IommuProt prot, Pfn[] pages) => _external.PinPages(device, iova, npage, prot, pages);

    /// <inheritdoc />
    public bool UnpinPages(ulong iova, int npage, out int walked) => _external.UnpinPages(iova, npage, out walked);

    /// <inheritdoc />
    /// <remarks>See <see cref="ExternalPins.DmaRw"/> for every errno.</remarks>
    public Errno DmaRw(ulong iova, Span<byte> data, bool write, Process? current) => _external.DmaRw(iova, data, write, current);

    /// <inheritdoc />
    public Errno RegisterNotifier(VfioDevice device, ulong events) => _notifier.RegisterNotifier(device, events);

    /// <inheritdoc />
    public void UnregisterNotifier(VfioDevice device) => _notifier.UnregisterNotifier(device);

    /// <summary>
    /// Copies the whole state under the lock, for the invariant checker (spec §4): mappings (as the DMA tree holds
    /// them), domains with their groups, page-table runs and pending invalidations, emulated groups, IOVA windows and
    /// counters, the BUG() record and the device holds. Cost follows mappings, page-table runs and external pins,
    /// never pages.
    /// </summary>
    public VfioIommuSnapshot Snapshot() => Snapshot(null);

    /// <summary>
    /// <see cref="Snapshot()"/> for the incremental check: with <paramref name="changed"/>, only the mappings and page-table
    /// runs of the window around it (<see cref="DmaTree.CheckWindowLocked"/>, recorded as <see cref="VfioIommuSnapshot.Window"/>);
    /// counters, domains, groups, windows and holds whole. Cost follows the mappings and runs in the window.
    /// </summary>
    public VfioIommuSnapshot Snapshot(ByteRange? changed)
    {
        using (_ctx.Lock.EnterScope())
        {
            ByteRange? window = changed is { } c ? _tree.CheckWindowLocked(c.Start, c.Last) : null;
            return new VfioIommuSnapshot(_ctx.ContainerId, V2, _ctx.PageSize,
                window is { } w ? _tree.SnapshotMappingsLocked(w) : _tree.SnapshotMappingsLocked(), _domains.SnapshotDomainsLocked(window),
                _domains.SnapshotEmulatedLocked(), _windows.ListLocked.Ranges, _tree.DmaAvailLocked, _tree.DmaEntryLimit, _tree.CountLocked,
                _tree.VaddrInvalidCountLocked, _domains.NumNonPinnedGroupsLocked, _dirty.TrackingLocked, _domains.PgsizeBitmapLocked,
                _notifier.DeviceCountLocked)
            {
                NotifierBug = _notifier.BugLocked,
                DevicePfnmaps = _holds.SnapshotLocked(),
                Window = window,
            };
        }
    }

    /// <summary>Calls <paramref name="visit"/> with (mapping IOVA, bitmap words) for every mapping that has a dirty
    /// bitmap, in IOVA order, under the container's lock; the callback must not keep the array. The one per-page
    /// state the snapshot leaves out, for whole-state digests (Checks/StateDigest).</summary>
    public void VisitDirtyBitmaps(Action<ulong, ulong[]> visit) => _dirty.VisitBitmaps(visit);
}
