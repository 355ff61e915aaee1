using VfioLab.Diagnostics;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// The device references and release notifiers that DMA mappings of device memory hold in the seeds profile (seed
/// 003, RFC 10/10 "vfio/type1: Register device notifier", 22 Feb 2021; the RFC's <c>pfnmap_obj</c>): one reference
/// and one notifier per device whose memory the container maps, linked to the mappings that reach it. The last such
/// mapping's removal lets the device go; the device's release removes every such mapping at once.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_holds</c>, <c>_dmaHolds</c>,
/// <c>_releasing</c> and each hold's mappings and flags; every <c>*Locked</c> member asserts it. The release
/// notifier runs from the device's notifier chain without it and takes it; the device's reference and notifier
/// calls need no lock of ours. Never changes: <c>_removeDmaLocked</c>. The RFC kept one object per mapping and found
/// the mapping by walking the whole DMA tree; the review (Jason Gunthorpe, 22 Feb 2021) asked to link them, as here.
/// </remarks>
internal sealed class DeviceMemoryHolds
{
    private readonly Type1Context _ctx;
    private readonly Action<VfioDma> _removeDmaLocked;
    private readonly Dictionary<VfioDevice, DevicePfnmap> _holds = [];
    private readonly Dictionary<VfioDma, List<DevicePfnmap>> _dmaHolds = [];
    private readonly List<DevicePfnmap> _releasing = [];

    /// <summary>A container's holds; <paramref name="removeDmaLocked"/> is its <c>vfio_remove_dma</c>, which a
    /// device's release calls for each mapping of the device's memory.</summary>
    public DeviceMemoryHolds(Type1Context ctx, Action<VfioDma> removeDmaLocked)
    {
        _ctx = ctx;
        _removeDmaLocked = removeDmaLocked;
    }

    /// <summary>Records that <paramref name="dma"/> reaches <paramref name="device"/>'s memory: the first such mapping
    /// of this container takes a device reference and registers the release notifier.</summary>
    public void HoldLocked(VfioDma dma, VfioDevice device)
    {
        _ctx.AssertLocked();
        if (!_holds.TryGetValue(device, out DevicePfnmap? pfnmap))
        {
            pfnmap = new DevicePfnmap(this, device);
            device.Get();
            device.RegisterNotifier(pfnmap);
            _holds.Add(device, pfnmap);
            if (_ctx.Trace.Enabled)
            {
                _ctx.Emit(TraceKind.DeviceNotifierRegister, dma.Task, TraceLog.F("device", device.Name));
            }
        }
        if (!pfnmap.Dmas.Contains(dma))
        {
            pfnmap.Dmas.Add(dma);
            if (!_dmaHolds.TryGetValue(dma, out List<DevicePfnmap>? list))
            {
                list = [];
                _dmaHolds.Add(dma, list);
            }
            list.Add(pfnmap);
        }
    }

    /// <summary>From vfio_remove_dma: the mapping no longer reaches its devices' memory. A device left with no mapping
    /// is let go at once (notifier unregistered, reference dropped), unless it is being released: its notifier is
    /// running and is unregistered by the deferred work instead.</summary>
    public void ReleaseLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        if (!_dmaHolds.Remove(dma, out List<DevicePfnmap>? list))
        {
            return;
        }
        foreach (DevicePfnmap pfnmap in list)
        {
            pfnmap.Dmas.Remove(dma);
            if (pfnmap.Dmas.Count == 0 && !pfnmap.Releasing)
            {
                _holds.Remove(pfnmap.Device);
                pfnmap.Device.UnregisterNotifier(pfnmap);
                pfnmap.Device.Put();
                if (_ctx.Trace.Enabled)
                {
                    _ctx.Emit(TraceKind.DeviceNotifierUnregister, dma.Task, TraceLog.F("device", pfnmap.Device.Name));
                }
            }
        }
    }

    /// <summary>Whether any device is held or being released (the checker's journal widens MAP/UNMAP then).</summary>
    public bool AnyLocked
    {
        get
        {
            _ctx.AssertLocked();
            return _holds.Count > 0 || _releasing.Count > 0;
        }
    }

    /// <summary>Each device this container holds, with the mappings reaching it (for the snapshot).</summary>
    public List<DevicePfnmapSnapshot> SnapshotLocked()
    {
        _ctx.AssertLocked();
        var list = new List<DevicePfnmapSnapshot>(_holds.Count + _releasing.Count);
        foreach (DevicePfnmap p in _holds.Values.Concat(_releasing))
        {
            list.Add(new DevicePfnmapSnapshot(p.Device, [.. p.Dmas.Select(d => d.Iova.Value)], p.Releasing, p.Device.HasNotifier(p),
                p.Device.References));
        }
        return list;
    }

    /// <summary>Test hook (lock held): the container lets go of <paramref name="device"/> (notifier unregistered,
    /// reference dropped) while its mappings of the device's memory stay (breaks pfnmap-device-referenced).</summary>
    public void DropHoldForTestLocked(VfioDevice device)
    {
        _ctx.AssertLocked();
        DevicePfnmap p = _holds[device];
        device.UnregisterNotifier(p);
        device.Put();
        p.Releasing = false;
    }

    /// <summary>Test hook (lock held): the release notifier for <paramref name="device"/> does nothing, so its mappings
    /// survive the device's release while reference and notifier stay (breaks no-translation-to-released-device).</summary>
    public void IgnoreReleaseForTestLocked(VfioDevice device)
    {
        _ctx.AssertLocked();
        _holds[device].IgnoreRelease = true;
    }

    // vfio_device_nb_cb on VFIO_DEVICE_RELEASE: every mapping of the device's memory goes from every domain now; the
    // notifier cannot unregister itself from inside its chain, so that and the device reference drop are queued as
    // work (unregister_device_bg).
    private void OnDeviceRelease(DevicePfnmap pfnmap)
    {
        using (_ctx.Lock.EnterScope())
        {
            if (!_holds.TryGetValue(pfnmap.Device, out DevicePfnmap? current) || !ReferenceEquals(current, pfnmap))
            {
                return;
            }
            pfnmap.Releasing = true;
            _holds.Remove(pfnmap.Device);
            _releasing.Add(pfnmap);
            foreach (VfioDma dma in pfnmap.Dmas.ToArray())
            {
                _removeDmaLocked(dma);
            }
            if (_ctx.Trace.Enabled)
            {
                _ctx.Emit(TraceKind.DeviceReleaseUnmapped, null, TraceLog.F("device", pfnmap.Device.Name));
            }
        }
        _ctx.Machine.Work.Queue($"type1.unregister_device_notifier({pfnmap.Device.Name})", () =>
        {
            pfnmap.Device.UnregisterNotifier(pfnmap);
            pfnmap.Device.Put();
            using (_ctx.Lock.EnterScope())
            {
                _releasing.Remove(pfnmap);
            }
        });
    }

    /// <summary>The notifier block and device reference of one device whose memory the container maps
    /// (struct pfnmap_obj of the RFC, one per device here).</summary>
    private sealed class DevicePfnmap(DeviceMemoryHolds holds, VfioDevice device) : IVfioDeviceNotifier
    {
        public VfioDevice Device { get; } = device;

        /// <summary>The mappings that reach the device's memory (under the container's lock).</summary>
        public List<VfioDma> Dmas { get; } = [];

        /// <summary>Set once the release notifier ran: the work item owns the unregistration.</summary>
        public bool Releasing { get; set; }

        /// <summary>Test only: the release notification is ignored.</summary>
        public bool IgnoreRelease { get; set; }

        public void Notify(VfioDevice source, VfioDeviceEvent deviceEvent)
        {
            if (deviceEvent == VfioDeviceEvent.Release && !IgnoreRelease)
            {
                holds.OnDeviceRelease(this);
            }
        }
    }
}
