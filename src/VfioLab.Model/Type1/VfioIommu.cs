using System.Numerics;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// One container's type1 state (struct vfio_iommu, drivers/vfio/vfio_iommu_type1.c): the DMA mappings,
/// the IOMMU domains that hold their translations, the attached groups, the valid IOVA windows, the
/// page sizes offered to the user, the mapping-slot budget and dirty tracking.
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c> (<c>iommu-&gt;lock</c>) protects every field below. Lock order: the container's
/// group lock, then this lock, then an address space's mmap lock (accounting, pinning), then the IOMMU
/// domain's and the host memory's own locks. Never change: <see cref="V2"/>, <c>_dmaEntryLimit</c>, the
/// behaviour switches. Registered pinning devices (<c>device_list</c>, or before v6.0 the notifier chain) are
/// protected by the same lock; the unmap notification copies them and calls them with the lock released.
/// </remarks>
internal sealed partial class VfioIommu : IVfioIommu, IVfioIommuInspection, IVfioIommuPinning
{
    private readonly Type1Context _ctx;
    private readonly DmaTree _tree;
    private readonly DomainSet _domains;
    private readonly DmaPinning _pinning;
    private readonly DomainReplay _replay;
    private readonly DirtyTracker _dirty;
    private readonly UnmapNotifier _notifier;
    private readonly ExternalPins _external;
    private readonly Type1Info _info;
    private readonly LockedMemoryAccounting _accounting;
    private readonly DeviceMemoryHolds _holds;
    private readonly PfnmapTranslation _pfnmap;

    public VfioIommu(Machine machine, Type1Behavior behavior, bool v2, int containerId)
    {
        _ctx = new Type1Context(machine, behavior, v2, containerId);
        _tree = new DmaTree(_ctx);
        _domains = new DomainSet(_ctx, _tree);
        _accounting = new LockedMemoryAccounting(_ctx);
        _holds = new DeviceMemoryHolds(_ctx, RemoveDmaLocked);
        _pfnmap = new PfnmapTranslation(_ctx, _holds);
        _pinning = new DmaPinning(_ctx, _accounting, _pfnmap, _domains);
        _replay = new DomainReplay(_ctx, _tree, _domains, _pinning);
        _dirty = new DirtyTracker(_ctx, _tree, _domains);
        _notifier = new UnmapNotifier(_ctx);
        _external = new ExternalPins(_ctx, _tree, _domains, _pinning, _pfnmap, _accounting, _dirty, _notifier);
        _info = new Type1Info(_ctx, _tree, _domains);
    }

    /// <summary>The host (memory, processes, trace, fault sites).</summary>
    public Machine Machine => _ctx.Machine;

    /// <summary>Version switches and module parameters.</summary>
    public Type1Behavior Behavior => _ctx.Behavior;

    /// <summary>TYPE1v2 semantics: strict unmap, dirty tracking, external pinning.</summary>
    public bool V2 => _ctx.V2;

    /// <summary>The container's number, for traces.</summary>
    public int ContainerId => _ctx.ContainerId;

    /// <inheritdoc />
    public ulong MappingCount
    {
        get { using (_lock.EnterScope()) { return (ulong)_tree.CountLocked; } }
    }

    /// <inheritdoc />
    public ulong DmaAvail
    {
        get { using (_lock.EnterScope()) { return _tree.DmaAvailLocked; } }
    }

    /// <summary>Translations of PFNMAP addresses made so far (device operations, page-table walks or vm_pgoff
    /// sums): each yields a whole VMA remainder or page-table block, so a BAR costs one or a few.</summary>
    public ulong PfnmapLookups
    {
        get { using (_lock.EnterScope()) { return _pfnmap.LookupsLocked; } }
    }

    /// <summary>The page sizes offered to the user (<c>pgsize_bitmap</c>, spec §2.6).</summary>
    public ulong PgsizeBitmap
    {
        get { using (_lock.EnterScope()) { return _domains.PgsizeBitmapLocked; } }
    }

    /// <summary>The valid IOVA windows (empty: no restriction).</summary>
    public IReadOnlyList<ByteRange> IovaRanges
    {
        get { using (_lock.EnterScope()) { return _domains.IovaListLocked.Ranges; } }
    }

    private int PageShift => Machine.PageShift;

    private ulong PageSize => Machine.PageSize;

    private TraceLog Trace => Machine.Trace;

    private FaultInjector Faults => Machine.Faults;

    /// <inheritdoc />
    public long CheckExtension(ulong extension)
    {
        using (_lock.EnterScope())
        {
            return extension switch
            {
                VfioExtension.Type1Iommu or VfioExtension.Type1v2Iommu or VfioExtension.UnmapAll => 1,
                // ef3a3f6a294b (v6.3): live update is refused while mediated devices could pin.
                VfioExtension.UpdateVaddr => _domains.EmulatedGroupsLocked.Count == 0 ? 1 : 0,
                VfioExtension.DmaCcIommu => _domains.AllEnforceCacheCoherencyLocked() ? 1 : 0,
                _ => 0,
            };
        }
    }

    /// <inheritdoc />
    public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument) => request switch
    {
        VfioIoctl.IommuGetInfo => _info.GetInfo(ref argument).AsReturn(),
        VfioIoctl.IommuMapDma => MapDma(context, ref argument).AsReturn(),
        VfioIoctl.IommuUnmapDma => UnmapDma(context, ref argument).AsReturn(),
        VfioIoctl.IommuDirtyPages => _dirty.DirtyPagesIoctl(context, ref argument).AsReturn(),
        _ => Errno.ENOTTY.AsReturn(),
    };

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
    public Errno DmaRw(ulong iova, Span<byte> data, bool write, Process? current) => _external.DmaRw(iova, data, write, current);

    /// <inheritdoc />
    public Errno RegisterNotifier(VfioDevice device, ulong events) => _notifier.RegisterNotifier(device, events);

    /// <inheritdoc />
    public void UnregisterNotifier(VfioDevice device) => _notifier.UnregisterNotifier(device);

    private OrderedLock _lock => _ctx.Lock;

    private void AssertLocked() => _ctx.AssertLocked();

    private void Emit(string kind, Process? process, params KeyValuePair<string, object>[] fields) => _ctx.Emit(kind, process, fields);
}
