using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// Who a type1 container tells when an externally pinned mapping is going, and how (spec §3.8): the devices registered
/// for it (<c>iommu-&gt;device_list</c> since v6.0, registered by the core when opened; v4.10-v5.19 the DMA_UNMAP
/// notifier chain, registered by the drivers themselves), <c>vfio_notify_dma_unmap</c> with the lock released, and the
/// kernel's <c>BUG_ON(++retries &gt; 10)</c> recorded as a <see cref="NotifierRetryBug"/> instead of crashing.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_devices</c> and <c>_bug</c>; the
/// <c>*Locked</c> members assert it and the registration entry points take it. <see cref="NotifyLocked"/> copies the
/// devices and calls them with the lock released (the drivers re-enter <c>unpin_pages</c>), then takes it again.
/// </remarks>
internal sealed class UnmapNotifier(Type1Context ctx)
{
    /// <summary>Notifications for one mapping after which the kernel gives up (<c>BUG_ON(++retries &gt; 10)</c>):
    /// the first notification plus ten retries.</summary>
    public const int RetryLimit = 10;

    private readonly List<VfioDevice> _devices = [];
    private NotifierRetryBug? _bug;

    /// <summary>Whether devices register for unmap notifications themselves through a notifier chain (v4.10-v5.19)
    /// instead of being registered by the core when opened (v6.0+).</summary>
    public bool UsesNotifierChain => ctx.Behavior.UnmapNotifierChain;

    /// <summary>Devices registered (pin_pages needs one: EINVAL without).</summary>
    public int DeviceCountLocked
    {
        get
        {
            ctx.AssertLocked();
            return _devices.Count;
        }
    }

    /// <summary>The kernel's BUG() in the unmap notification, once an unmap hit it (kept until release).</summary>
    public NotifierRetryBug? BugLocked
    {
        get
        {
            ctx.AssertLocked();
            return _bug;
        }
    }

    /// <summary>register_device (v6.0+): an opened device that pins pages through the backend. Before v6.0 the core
    /// registered nothing: a driver registers its own notifier (<see cref="RegisterNotifier"/>).</summary>
    public void RegisterDevice(VfioDevice device)
    {
        if (UsesNotifierChain)
        {
            return;
        }
        using (ctx.Lock.EnterScope())
        {
            AddLocked(device);
        }
    }

    /// <summary>unregister_device (v6.0+).</summary>
    public void UnregisterDevice(VfioDevice device)
    {
        if (UsesNotifierChain)
        {
            return;
        }
        using (ctx.Lock.EnterScope())
        {
            _devices.Remove(device);
        }
    }

    /// <summary>vfio_iommu_type1_register_notifier (v4.10-v5.19): EINVAL for events other than
    /// VFIO_IOMMU_NOTIFY_DMA_UNMAP; ENOTTY when this profile has no notifier chain (v6.0+ removed the op).</summary>
    public Errno RegisterNotifier(VfioDevice device, ulong events)
    {
        if (!UsesNotifierChain)
        {
            return Refusals.Refuse(Errno.ENOTTY, "vfio_register_notifier", "this kernel has no IOMMU notifier chain (replaced by dma_unmap in v6.0, ce4b4657ff18)");
        }
        if ((events & ~VfioIommuNotify.DmaUnmap) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_register_notifier", "events 0x{0:x} has bits other than VFIO_IOMMU_NOTIFY_DMA_UNMAP", events);
        }
        using (ctx.Lock.EnterScope())
        {
            AddLocked(device);
            return Errno.None;
        }
    }

    /// <summary>vfio_iommu_type1_unregister_notifier (v4.10-v5.19).</summary>
    public void UnregisterNotifier(VfioDevice device)
    {
        if (!UsesNotifierChain)
        {
            return;
        }
        using (ctx.Lock.EnterScope())
        {
            _devices.Remove(device);
        }
    }

    /// <summary>
    /// vfio_notify_dma_unmap (v6.0+) or the DMA_UNMAP notifier chain (v4.10-v5.19): every registered device is
    /// told the whole mapping is going, with the container lock released so it can unpin; the caller then starts
    /// its walk over. The lock is held again on return.
    /// </summary>
    public void NotifyLocked(VfioDma dma)
    {
        ctx.AssertLocked();
        if (_devices.Count == 0)
        {
            return;
        }
        VfioDevice[] devices = [.. _devices];
        ulong iova = dma.Iova.Value;
        ulong size = dma.Size;
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(UsesNotifierChain ? TraceKind.NotifierCallChain : TraceKind.DmaUnmapNotify, dma.Task, TraceLog.F("iova", iova),
                TraceLog.F("size", size), TraceLog.F("devices", devices.Length), TraceLog.F("pins", dma.VpfnCount));
        }
        ctx.Lock.Exit();
        try
        {
            foreach (VfioDevice d in devices)
            {
                (d.Driver as IVfioPinningDriver)?.DmaUnmap(d, iova, size);
            }
        }
        finally
        {
            ctx.Lock.Enter();
        }
    }

    /// <summary>BUG_ON(++retries &gt; 10): the same mapping still pinned after <paramref name="notifications"/>
    /// notifications. Recorded for the checker (the first record stays); the caller stops its walk and leaves the
    /// state as it is. Returns EBUSY, the model's answer where the kernel oopses.</summary>
    public Errno RecordRetryBugLocked(VfioDma dma, int notifications)
    {
        ctx.AssertLocked();
        _bug ??= new NotifierRetryBug(dma.Iova.Value, dma.Size, notifications, dma.VpfnCount);
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.Bug, dma.Task, TraceLog.F("what", "unmap notifier retry limit"), TraceLog.F("iova", dma.Iova.Value), TraceLog.F("size", dma.Size),
                TraceLog.F("notifications", notifications), TraceLog.F("pins", dma.VpfnCount));
        }
        return Refusals.Refuse(Errno.EBUSY, "vfio_dma_do_unmap",
            "the mapping [0x{0:x}, +0x{1:x}) is still pinned by a device after {2} unmap notifications: the kernel BUG()s here (the model keeps the mapping)",
            dma.Iova.Value, dma.Size, (ulong)notifications);
    }

    /// <summary>Release: the BUG record goes with the backend (the registered devices stay until they close).</summary>
    public void ResetLocked()
    {
        ctx.AssertLocked();
        _bug = null;
    }

    private void AddLocked(VfioDevice device)
    {
        ctx.AssertLocked();
        if (!_devices.Contains(device))
        {
            _devices.Add(device);
        }
    }
}
