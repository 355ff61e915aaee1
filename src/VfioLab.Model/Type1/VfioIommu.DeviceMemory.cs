using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// DMA mappings of device memory (VM_PFNMAP): which translation a PFNMAP address gets, by profile, and in
// the seeds profile the device references and release notifiers such mappings hold (seed 003, RFC 10/10
// "vfio/type1: Register device notifier", 22 Feb 2021).
internal sealed partial class VfioIommu
{
    // Per device whose memory this container maps (seeds profile): one reference and one notifier, and the
    // mappings that reach the device's memory. The RFC kept one object per mapping and found the mapping by
    // walking the whole DMA tree; the review (Jason Gunthorpe, 22 Feb 2021) asked to link them, as here.
    private readonly Dictionary<VfioDevice, DevicePfnmap> _devicePfnmaps = [];
    private readonly Dictionary<VfioDma, List<DevicePfnmap>> _dmaDevices = [];
    private readonly List<DevicePfnmap> _releasing = [];
    private ulong _pfnmapLookups;

    /// <summary>Translations of PFNMAP addresses made so far (device operations, page-table walks or vm_pgoff
    /// sums): each yields a whole VMA remainder or page-table block, so a BAR costs one or a few.</summary>
    public ulong PfnmapLookups
    {
        get { using (_lock.EnterScope()) { return _pfnmapLookups; } }
    }

    /// <summary>
    /// vaddr_get_pfns' PFNMAP branch, by profile. Seeds (the RFC): the VMA's vfio device translates it
    /// (whole VMA remainder, no page walk, whatever the CPU page table holds) and the mapping takes a
    /// reference on the device and registers for its release; a PFNMAP of no vfio device is refused with
    /// ENODEV under <c>strict_mmio_maps</c>, else walked untracked. Upstream: the page-table walk.
    /// EFAULT: a write through a read-only VMA, a released device's VMA, and the walk's own refusals;
    /// EINVAL: a device VMA that maps no device memory.
    /// </summary>
    private Errno VaddrGetPfnsOfPfnmapLocked(VfioDma dma, AddressSpace mm, HostVirtAddr vaddr, ulong npage, bool write, out Pfn pfn, out ulong count)
    {
        AssertLocked();
        _pfnmapLookups++;
        if (!Behavior.DeviceMemoryNotifier)
        {
            return VaddrGetPfnmapLocked(mm, vaddr, npage, write, out pfn, out count);
        }
        pfn = default;
        count = 0;
        VfioDevice? device;
        bool walk = false;
        mm.MmapReadLock();
        try
        {
            Vma? vma = mm.FindVmaLocked(vaddr);
            if (vma is null || !vma.IsPfnMapOrIo)
            {
                return Errno.EFAULT;
            }
            // vfio_device_get_from_vma: the VMA's file is a vfio device file (Jason Gunthorpe's suggestion).
            device = (vma.File?.Operations as VfioDeviceFile)?.Device;
            if (device is null)
            {
                if (Behavior.StrictMmioMaps)
                {
                    return Errno.ENODEV;
                }
                // Not strict: as the RFC, the mapping proceeds untracked through the ordinary walk.
                walk = true;
            }
            else if (write && !vma.IsWritable)
            {
                return Errno.EFAULT;
            }
            else if (device.OpenCount == 0 || device.Removed)
            {
                // A VMA left behind by a forced release: an access through it would fault (SIGBUS).
                return Errno.EFAULT;
            }
            else if (device.Driver is not IVfioDeviceMemory memory || !memory.TryVmaToPfn(device, vma, out Pfn first))
            {
                return Errno.EINVAL;
            }
            else
            {
                ulong page = vaddr.Value >> PageShift;
                pfn = first.Plus(page - vma.StartPage);
                count = Math.Min(npage, vma.LastPage - page + 1);
            }
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        if (walk)
        {
            return VaddrGetPfnmapLocked(mm, vaddr, npage, write, out pfn, out count);
        }
        HoldDeviceLocked(dma, device!);
        return Errno.None;
    }

    // Records that the mapping reaches the device's memory: the first such mapping of this container takes
    // a device reference and registers the release notifier.
    private void HoldDeviceLocked(VfioDma dma, VfioDevice device)
    {
        if (!_devicePfnmaps.TryGetValue(device, out DevicePfnmap? pfnmap))
        {
            pfnmap = new DevicePfnmap(this, device);
            device.Get();
            device.RegisterNotifier(pfnmap);
            _devicePfnmaps.Add(device, pfnmap);
            if (Trace.Enabled)
            {
                Emit("device_notifier_register", dma.Task, TraceLog.F("device", device.Name));
            }
        }
        if (!pfnmap.Dmas.Contains(dma))
        {
            pfnmap.Dmas.Add(dma);
            if (!_dmaDevices.TryGetValue(dma, out List<DevicePfnmap>? list))
            {
                list = [];
                _dmaDevices.Add(dma, list);
            }
            list.Add(pfnmap);
        }
    }

    // From vfio_remove_dma: the mapping no longer reaches its devices' memory. A device left with no mapping
    // is let go at once (notifier unregistered, reference dropped), unless it is being released: its
    // notifier is running and is unregistered by the deferred work instead.
    private void ReleaseDevicesOfDmaLocked(VfioDma dma)
    {
        if (!_dmaDevices.Remove(dma, out List<DevicePfnmap>? list))
        {
            return;
        }
        foreach (DevicePfnmap pfnmap in list)
        {
            pfnmap.Dmas.Remove(dma);
            if (pfnmap.Dmas.Count == 0 && !pfnmap.Releasing)
            {
                _devicePfnmaps.Remove(pfnmap.Device);
                pfnmap.Device.UnregisterNotifier(pfnmap);
                pfnmap.Device.Put();
                if (Trace.Enabled)
                {
                    Emit("device_notifier_unregister", dma.Task, TraceLog.F("device", pfnmap.Device.Name));
                }
            }
        }
    }

    // vfio_device_nb_cb on VFIO_DEVICE_RELEASE: every mapping of the device's memory goes from every domain
    // now; the notifier cannot unregister itself from inside its chain, so that and the device reference
    // drop are queued as work (unregister_device_bg).
    private void OnDeviceRelease(DevicePfnmap pfnmap)
    {
        using (_lock.EnterScope())
        {
            if (!_devicePfnmaps.TryGetValue(pfnmap.Device, out DevicePfnmap? current) || !ReferenceEquals(current, pfnmap))
            {
                return;
            }
            pfnmap.Releasing = true;
            _devicePfnmaps.Remove(pfnmap.Device);
            _releasing.Add(pfnmap);
            foreach (VfioDma dma in pfnmap.Dmas.ToArray())
            {
                RemoveDmaLocked(dma);
            }
            if (Trace.Enabled)
            {
                Emit("device_release_unmapped", null, TraceLog.F("device", pfnmap.Device.Name));
            }
        }
        Machine.Work.Queue($"type1.unregister_device_notifier({pfnmap.Device.Name})", () =>
        {
            pfnmap.Device.UnregisterNotifier(pfnmap);
            pfnmap.Device.Put();
            using (_lock.EnterScope())
            {
                _releasing.Remove(pfnmap);
            }
        });
    }

    // Under the lock, for the snapshot: each device this container holds, with the mappings reaching it.
    private List<DevicePfnmapSnapshot> DevicePfnmapsLocked()
    {
        var list = new List<DevicePfnmapSnapshot>(_devicePfnmaps.Count + _releasing.Count);
        foreach (DevicePfnmap p in _devicePfnmaps.Values.Concat(_releasing))
        {
            list.Add(new DevicePfnmapSnapshot(p.Device, [.. p.Dmas.Select(d => d.Iova.Value)], p.Releasing, p.Device.HasNotifier(p), p.Device.References));
        }
        return list;
    }

    /// <summary>Test hook: the container lets go of <paramref name="device"/> (notifier unregistered, reference
    /// dropped) while its mappings of the device's memory stay (breaks pfnmap-device-referenced).</summary>
    internal void DropDeviceHoldForTest(VfioDevice device)
    {
        using (_lock.EnterScope())
        {
            DevicePfnmap p = _devicePfnmaps[device];
            device.UnregisterNotifier(p);
            device.Put();
            p.Releasing = false;
        }
    }

    /// <summary>Test hook: the container's release notifier for <paramref name="device"/> does nothing, so its
    /// mappings survive the device's release while reference and notifier stay (breaks
    /// no-translation-to-released-device).</summary>
    internal void IgnoreDeviceReleaseForTest(VfioDevice device)
    {
        using (_lock.EnterScope())
        {
            _devicePfnmaps[device].IgnoreRelease = true;
        }
    }

    /// <summary>The notifier block and device reference of one device whose memory the container maps
    /// (struct pfnmap_obj of the RFC, one per device here).</summary>
    private sealed class DevicePfnmap(VfioIommu iommu, VfioDevice device) : IVfioDeviceNotifier
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
                iommu.OnDeviceRelease(this);
            }
        }
    }
}
