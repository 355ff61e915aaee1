using VfioLab.Abi;

using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// A VFIO group, <c>/dev/vfio/N</c> (struct vfio_group, drivers/vfio/group.c): the unit of ownership
/// of an IOMMU group's devices. One open file at a time; devices are reached through it once it is
/// in a container whose backend is set.
/// </summary>
/// <remarks>
/// Lock: <c>GroupLock</c> (group->group_lock) protects <see cref="Container"/>,
/// <see cref="ContainerUsers"/>, <see cref="OpenedFile"/> and the device open counts. It is taken
/// before the container's lock. <see cref="Number"/>, <see cref="Type"/> never change.
/// </remarks>
internal sealed class VfioGroup
{
    private readonly List<VfioDevice> _devices = [];
    private readonly IVfioGroupBacking _backing;

    public VfioGroup(int number, VfioGroupType type, IVfioGroupBacking backing)
    {
        Number = number;
        Type = type;
        _backing = backing;
    }

    /// <summary>The group lock (group->group_lock).</summary>
    public OrderedLock GroupLock { get; } = new(LockRank.VfioGroup);

    /// <summary>The number in <c>/dev/vfio/N</c> (the IOMMU group id).</summary>
    public int Number { get; }

    /// <summary>Real or emulated IOMMU group.</summary>
    public VfioGroupType Type { get; }

    /// <summary>What the IOMMU layer knows of the group: ownership, domains, reserved regions.</summary>
    public IVfioGroupBacking Backing => _backing;

    /// <summary>The container the group is in, or null.</summary>
    public VfioContainer? Container { get; private set; }

    /// <summary>1 for the group itself while in a container, plus one per device with open fds.</summary>
    public int ContainerUsers { get; private set; }

    /// <summary>The one open file of the group (group->opened_file: the file's operations), or null.</summary>
    public object? OpenedFile { get; private set; }

    /// <summary>Whether the IOMMU group still exists (false once every device was unplugged).</summary>
    public bool Present => _backing.Present;

    /// <summary>The group's VFIO devices.</summary>
    public IReadOnlyList<VfioDevice> Devices => _devices;

    /// <summary>Adds a device bound to a VFIO driver (vfio_device_set_group).</summary>
    public void AddDevice(VfioDevice device) => _devices.Add(device);

    /// <summary>Removes an unplugged device.</summary>
    public void RemoveDevice(VfioDevice device) => _devices.Remove(device);

    /// <summary>Number of devices bound to a VFIO driver (group->drivers).</summary>
    public int DriverCount => _devices.Count;

    /// <summary>vfio_group_fops_open: ENODEV when no VFIO driver is bound any more, EBUSY when already open.</summary>
    public Errno Open(object file)
    {
        using (GroupLock.EnterScope())
        {
            if (DriverCount == 0)
            {
                return Refusals.Refuse(Errno.ENODEV, "vfio_group_fops_open", "group {0} has no device bound to a VFIO driver any more", (ulong)Number);
            }
            if (OpenedFile is not null)
            {
                return Refusals.Refuse(Errno.EBUSY, "vfio_group_fops_open", "group {0} is already open (one open file per group)", (ulong)Number);
            }
            OpenedFile = file;
            return Errno.None;
        }
    }

    /// <summary>vfio_group_fops_release: runs when the last reference to the group file goes, which
    /// is after every device fd has closed (they hold references to it).</summary>
    public void Release()
    {
        using (GroupLock.EnterScope())
        {
            if (Container is not null)
            {
                DetachContainerLocked();
            }
            OpenedFile = null;
        }
    }

    /// <summary>VFIO_GROUP_GET_STATUS flags: CONTAINER_SET|VIABLE in a container; otherwise VIABLE
    /// unless a kernel driver holds DMA ownership. ENODEV when the IOMMU group is gone.</summary>
    public Errno GetStatus(out GroupStatusFlags flags)
    {
        using (GroupLock.EnterScope())
        {
            flags = 0;
            if (!Present)
            {
                return Refusals.Refuse(Errno.ENODEV, "vfio_group_ioctl_get_status", "the IOMMU group {0} is gone", (ulong)Number);
            }
            if (Container is not null)
            {
                flags = GroupStatusFlags.ContainerSet | GroupStatusFlags.Viable;
            }
            else if (!_backing.DmaOwnerClaimedByKernel)
            {
                flags = GroupStatusFlags.Viable;
            }
            return Errno.None;
        }
    }

    /// <summary>What SET_CONTAINER answers for an fd that is neither a container nor an iommufd: EBADFD since
    /// "vfio-iommufd: Allow iommufd to be used in place of a container fd" (v6.2), EINVAL before (the
    /// <c>linux-6.1</c> profile; seen on the conformance rig).</summary>
    public Errno NotAContainerError { get; init; } = Errno.EBADFD;

    /// <summary>VFIO_GROUP_SET_CONTAINER after the fd was read and resolved: EINVAL when already in
    /// a container, ENODEV when the IOMMU group is gone, <see cref="NotAContainerError"/> when the fd is not a
    /// container.</summary>
    public Errno SetContainer(VfioContainer? container, Host.Process? current = null)
    {
        using (GroupLock.EnterScope())
        {
            if (Container is not null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_group_ioctl_set_container", "group {0} is already in container {1}", (ulong)Number, (ulong)Container.Id);
            }
            if (!Present)
            {
                return Refusals.Refuse(Errno.ENODEV, "vfio_group_ioctl_set_container", "the IOMMU group {0} is gone", (ulong)Number);
            }
            if (container is null)
            {
                return Refusals.Refuse(NotAContainerError, "vfio_group_ioctl_set_container", "the fd given to group {0} is not a VFIO container", (ulong)Number,
                    source: NotAContainerError == Errno.EBADFD ? null : "linux-6.1: EINVAL (EBADFD since v6.2, vfio-iommufd)");
            }
            Errno e = container.AttachGroupLocked(this, current);
            if (e != Errno.None)
            {
                return e;
            }
            Container = container;
            ContainerUsers = 1;
            return Errno.None;
        }
    }

    /// <summary>VFIO_GROUP_UNSET_CONTAINER: EINVAL without a container, EBUSY while devices are open.</summary>
    public Errno UnsetContainer()
    {
        using (GroupLock.EnterScope())
        {
            if (Container is null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_group_ioctl_unset_container", "group {0} is in no container", (ulong)Number);
            }
            if (ContainerUsers != 1)
            {
                return Refusals.Refuse(Errno.EBUSY, "vfio_group_ioctl_unset_container", "group {0} still has {1} device file(s) open", (ulong)Number,
                    (ulong)(ContainerUsers - 1));
            }
            DetachContainerLocked();
            return Errno.None;
        }
    }

    /// <summary>The device named <paramref name="name"/> (dev_name), or ENODEV.</summary>
    public Errno FindDevice(string name, out VfioDevice? device)
    {
        device = _devices.Find(d => d.Name == name);
        return device is null
            ? Refusals.Refuse(Errno.ENODEV, "vfio_device_get_from_name", "group {0} has no device named '{4}'", (ulong)Number, text: name)
            : Errno.None;
    }

    /// <summary>ops->claim DMA ownership of the IOMMU group (EPERM: not viable).</summary>
    internal Errno ClaimDmaOwner() => _backing.ClaimDmaOwner(this);

    /// <summary>Releases DMA ownership claimed at SET_CONTAINER.</summary>
    internal void ReleaseDmaOwner() => _backing.ReleaseDmaOwner(this);

    /// <summary>vfio_group_use_container, with the group lock held: EINVAL before SET_IOMMU. The
    /// device takes a reference on the group file, so the group is released only after its devices.</summary>
    internal Errno UseContainerLocked(IVfioFileHandle groupFile)
    {
        System.Diagnostics.Debug.Assert(GroupLock.IsHeldByCurrentThread);
        if (Container?.Iommu is null)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_group_use_container", Container is null
                ? "group {0} is in no container"
                : "container {1} of group {0} has no IOMMU driver yet (VFIO_SET_IOMMU)", (ulong)Number, (ulong)(Container?.Id ?? 0));
        }
        groupFile.AddReference();
        ContainerUsers++;
        return Errno.None;
    }

    /// <summary>vfio_group_unuse_container, with the group lock held.</summary>
    internal void UnuseContainerLocked()
    {
        System.Diagnostics.Debug.Assert(GroupLock.IsHeldByCurrentThread && ContainerUsers > 1);
        ContainerUsers--;
    }

    private void DetachContainerLocked()
    {
        GroupLock.AssertHeld();
        VfioContainer c = Container!;
        c.DetachGroupLocked(this);
        Container = null;
        ContainerUsers = 0;
    }
}
