using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// A device bound to a VFIO driver (struct vfio_device, drivers/vfio/vfio_main.c): its group, its
/// driver, and its open count. The first fd uses the group's container (the backend must be set)
/// and opens the driver; the last close undoes both.
/// </summary>
/// <remarks>
/// Lock: <see cref="OpenCount"/> is protected by the group's lock (the kernel's dev_set lock nests
/// inside it; one device per dev_set here). <see cref="Name"/>, <see cref="Group"/> and
/// <see cref="Driver"/> never change.
/// </remarks>
internal sealed partial class VfioDevice
{
    private readonly List<IVfioDeviceNotifier> _notifiers = [];
    private IVfioFileHandle? _groupFile;
    private int _references;

    public VfioDevice(string name, VfioGroup group, IVfioDeviceDriver driver, object? hardware, FaultInjector? faults = null)
    {
        Name = name;
        Group = group;
        Driver = driver;
        Hardware = hardware;
        Faults = faults ?? new FaultInjector();
    }

    /// <summary>The host's fault injector, for the fallible steps of opening the device (the device file's
    /// allocation, the driver's open) and of the driver's own operations.</summary>
    public FaultInjector Faults { get; }

    /// <summary>dev_name: a PCI address (<c>0000:01:00.0</c>) or an mdev UUID.</summary>
    public string Name { get; }

    /// <summary>The device's group.</summary>
    public VfioGroup Group { get; }

    /// <summary>The bound VFIO driver.</summary>
    public IVfioDeviceDriver Driver { get; }

    /// <summary>The simulated hardware behind the device (a PCI function, an mdev's parent), for its driver.</summary>
    public object? Hardware { get; }

    /// <summary>Number of open device fds (device->open_count).</summary>
    public int OpenCount { get; private set; }

    /// <summary>Whether the device has been unplugged from the host.</summary>
    public bool Removed { get; internal set; }

    /// <summary>vfio_df_group_open: EINVAL when the group has no container or the container has no
    /// backend; the driver's open error. All-or-nothing.</summary>
    public Errno OpenFile(IVfioFileHandle groupFile)
    {
        using (Group.GroupLock.EnterScope())
        {
            if (Group.Container is null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_df_group_open", "group {0} of {4} is in no container", (ulong)Group.Number, text: Name);
            }
            OpenCount++;
            if (OpenCount == 1)
            {
                Errno e = FirstOpenLocked(groupFile);
                if (e != Errno.None)
                {
                    OpenCount--;
                    return e;
                }
            }
            return Errno.None;
        }
    }

    /// <summary>References other kernel users hold (vfio_device_get / vfio_device_put), beyond the
    /// registration's own: the seeds profile's type1 holds one while it maps the device's memory.</summary>
    public int References => Volatile.Read(ref _references);

    /// <summary>vfio_device_get.</summary>
    public void Get() => Interlocked.Increment(ref _references);

    /// <summary>vfio_device_put.</summary>
    public void Put()
    {
        if (Interlocked.Decrement(ref _references) < 0)
        {
            throw new InvalidOperationException($"vfio_device_put on {Name} without a reference");
        }
    }

    /// <summary>Whether <paramref name="notifier"/> is registered on the device's chain.</summary>
    public bool HasNotifier(IVfioDeviceNotifier notifier)
    {
        lock (_notifiers)
        {
            return _notifiers.Contains(notifier);
        }
    }

    /// <summary>Listeners currently registered on the device's notifier chain.</summary>
    public int NotifierCount
    {
        get
        {
            lock (_notifiers)
            {
                return _notifiers.Count;
            }
        }
    }

    /// <summary>Adds a listener to the device's notifier chain.</summary>
    public void RegisterNotifier(IVfioDeviceNotifier notifier)
    {
        lock (_notifiers)
        {
            _notifiers.Add(notifier);
        }
    }

    /// <summary>Removes a listener; a no-op when it is not registered.</summary>
    public void UnregisterNotifier(IVfioDeviceNotifier notifier)
    {
        lock (_notifiers)
        {
            _notifiers.Remove(notifier);
        }
    }

    /// <summary>Calls every listener in registration order, on a snapshot, so a listener may
    /// unregister itself from its callback.</summary>
    public void Notify(VfioDeviceEvent deviceEvent)
    {
        IVfioDeviceNotifier[] snapshot;
        lock (_notifiers)
        {
            snapshot = [.. _notifiers];
        }
        foreach (IVfioDeviceNotifier n in snapshot)
        {
            n.Notify(this, deviceEvent);
        }
    }

    /// <summary>vfio_df_group_close, from the device file's release. The group file reference taken
    /// at first open is dropped after the lock, as the kernel's deferred fput does.</summary>
    public void CloseFile()
    {
        IVfioFileHandle? groupFile = null;
        bool released = false;
        using (Group.GroupLock.EnterScope())
        {
            System.Diagnostics.Debug.Assert(OpenCount > 0);
            // vfio_df_close: the last close runs close_device while the device still counts as open, so
            // the driver may still unpin and unregister through the core; the count drops after.
            if (OpenCount == 1)
            {
                released = true;
                Driver.CloseDevice(this);
                if (Driver.PinsPages)
                {
                    Group.Container?.Iommu?.UnregisterDevice(this);
                }
                Group.UnuseContainerLocked();
                groupFile = _groupFile;
                _groupFile = null;
            }
            OpenCount--;
        }
        if (released)
        {
            // Listeners run without the group lock: a backend takes its own lock in the callback.
            Notify(VfioDeviceEvent.Release);
        }
        groupFile?.DropReference();
    }

    private Errno FirstOpenLocked(IVfioFileHandle groupFile)
    {
        Group.GroupLock.AssertHeld();
        Errno e = Group.UseContainerLocked(groupFile);
        if (e != Errno.None)
        {
            return e;
        }
        _groupFile = groupFile;
        IVfioIommu iommu = Group.Container!.Iommu!;
        if (Driver.PinsPages)
        {
            iommu.RegisterDevice(this);
        }
        e = Driver.OpenDevice(this);
        if (e != Errno.None)
        {
            if (Driver.PinsPages)
            {
                iommu.UnregisterDevice(this);
            }
            Group.UnuseContainerLocked();
            _groupFile = null;
            groupFile.DropReference();
        }
        return e;
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
