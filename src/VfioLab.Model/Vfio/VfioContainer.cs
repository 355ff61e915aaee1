using VfioLab.Abi;

using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// A container, <c>/dev/vfio/vfio</c> (struct vfio_container, drivers/vfio/container.c): a set of
/// groups sharing one IOMMU backend state once SET_IOMMU has chosen a backend.
/// </summary>
/// <remarks>
/// Lock: <c>_groupLock</c> (container->group_lock) protects <see cref="Groups"/>, <see cref="Driver"/>,
/// <see cref="Iommu"/> and <c>_noIommu</c> (<see cref="Iommu"/> is written under it and read by the ioctl path with a
/// volatile read). Lock order: a group's lock, then this lock, then the
/// backend's own lock. The backend registry never changes after the subsystem is built.
/// </remarks>
internal sealed class VfioContainer
{
    private readonly OrderedLock _groupLock = new(LockRank.ContainerGroups);
    private readonly List<VfioGroup> _groups = [];
    private readonly VfioSubsystem _subsystem;
    private bool _noIommu;

    public VfioContainer(VfioSubsystem subsystem, int id)
    {
        _subsystem = subsystem;
        Id = id;
    }

    /// <summary>A number identifying the container in traces and reports.</summary>
    public int Id { get; }

    /// <summary>The attached groups, in attach order.</summary>
    public IReadOnlyList<VfioGroup> Groups
    {
        get
        {
            using (_groupLock.EnterScope())
            {
                return [.. _groups];
            }
        }
    }

    /// <summary>Whether an fd of <c>/dev/vfio/vfio</c> still refers to the container.</summary>
    public bool FileOpen { get; private set; } = true;

    /// <summary>The backend chosen by SET_IOMMU, or null.</summary>
    public IVfioIommuDriver? Driver { get; private set; }

    private IVfioIommu? _iommu;

    /// <summary>The backend's state for this container, or null (written under the group lock; read by
    /// <see cref="BackendIoctl"/> without it).</summary>
    public IVfioIommu? Iommu
    {
        get => Volatile.Read(ref _iommu);
        private set => Volatile.Write(ref _iommu, value);
    }

    /// <summary>VFIO_GET_API_VERSION.</summary>
    public static long GetApiVersion() => VfioIoctl.ApiVersion;

    /// <summary>VFIO_CHECK_EXTENSION: with no backend chosen, every allowed backend is polled and
    /// the first positive answer wins; with one chosen, only it answers, with its state.</summary>
    public long CheckExtension(ulong extension)
    {
        using (_groupLock.EnterScope())
        {
            if (Iommu is not null)
            {
                return Iommu.CheckExtension(extension);
            }
            long ret = 0;
            foreach (IVfioIommuDriver driver in _subsystem.IommuDrivers)
            {
                if (_groups.Count > 0 && !Allowed(driver))
                {
                    continue;
                }
                ret = driver.CheckExtension(extension);
                if (ret > 0)
                {
                    break;
                }
            }
            return ret;
        }
    }

    /// <summary>VFIO_SET_IOMMU. EINVAL with no group or a backend already set; the last backend
    /// error; ENODEV when no backend claims <paramref name="type"/>.</summary>
    public Errno SetIommu(ulong type, Host.Process? current = null)
    {
        using (_groupLock.EnterScope())
        {
            if (_groups.Count == 0 || Driver is not null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_ioctl_set_iommu", _groups.Count == 0
                    ? "container {0} has no group yet (VFIO_GROUP_SET_CONTAINER comes first)"
                    : "container {0} already has its IOMMU driver ({4})", (ulong)Id, text: Driver?.Name);
            }
            Errno ret = Refusals.Refuse(Errno.ENODEV, "vfio_ioctl_set_iommu", "no IOMMU driver of this host claims type {0}", type);
            foreach (IVfioIommuDriver driver in _subsystem.IommuDrivers)
            {
                if (!Allowed(driver) || driver.CheckExtension(type) <= 0)
                {
                    continue;
                }
                Errno opened = driver.Open(type, this, out IVfioIommu? state);
                if (opened != Errno.None || state is null)
                {
                    ret = opened == Errno.None
                        ? Refusals.Refuse(Errno.ENOMEM, "vfio_ioctl_set_iommu", "the {4} driver's open returned no state", text: driver.Name)
                        : opened;
                    continue;
                }
                Errno attached = AttachAllLocked(state, current);
                if (attached != Errno.None)
                {
                    state.Release();
                    ret = attached;
                    continue;
                }
                Driver = driver;
                Iommu = state;
                _subsystem.Trace.Emit(TraceKind.VfioSetIommu, 0, Diagnostics.TraceLog.F("container", Id), Diagnostics.TraceLog.F("driver", driver.Name), Diagnostics.TraceLog.F("type", type));
                return Errno.None;
            }
            return ret;
        }
    }

    /// <summary>The container's fd was closed (vfio_fops_release); it lives on while groups hold it.</summary>
    public void FileReleased()
    {
        using (_groupLock.EnterScope())
        {
            FileOpen = false;
            if (_groups.Count == 0)
            {
                _subsystem.ForgetContainer(this);
            }
        }
    }

    /// <summary>Any other container ioctl: EINVAL before SET_IOMMU, else the backend's answer.</summary>
    /// <remarks>The backend is read without the group lock: the lock made the one reference read atomic and nothing
    /// more (it was released before the backend ran, as here), and it cost a lock round trip on every MAP and UNMAP
    /// (issue 16's 4 KiB pair).</remarks>
    public long BackendIoctl(VfioCallContext context, uint request, ref IoctlArgument argument)
    {
        IVfioIommu? iommu = Iommu;
        return iommu is null
            ? Refusals.RefuseReturn(Errno.EINVAL, "vfio_fops_unl_ioctl", "container {0} has no IOMMU driver yet (VFIO_SET_IOMMU), so request 0x{1:x} has no one to answer it",
                (ulong)Id, request)
            : iommu.Ioctl(context, request, ref argument);
    }

    /// <summary>vfio_container_attach_group, called with the group's lock held. EPERM when the
    /// group is not viable (a member bound to a kernel driver); the backend's attach error.</summary>
    internal Errno AttachGroupLocked(VfioGroup group, Host.Process? current)
    {
        group.GroupLock.AssertHeld();
        using (_groupLock.EnterScope())
        {
            bool groupNoIommu = false;
            if (_groups.Count > 0 && _noIommu != groupNoIommu)
            {
                return Refusals.Refuse(Errno.EPERM, "vfio_container_attach_group", "container {0} cannot mix noiommu and IOMMU groups", (ulong)Id);
            }
            if (group.Type == VfioGroupType.Iommu)
            {
                Errno claimed = group.ClaimDmaOwner();
                if (claimed != Errno.None)
                {
                    return claimed;
                }
            }
            if (Iommu is not null)
            {
                Errno attached = Iommu.AttachGroup(group, current);
                if (attached != Errno.None)
                {
                    if (group.Type == VfioGroupType.Iommu)
                    {
                        group.ReleaseDmaOwner();
                    }
                    return attached;
                }
            }
            _noIommu = groupNoIommu;
            _groups.Add(group);
            return Errno.None;
        }
    }

    /// <summary>vfio_group_detach_container's container half: the backend detaches the group; the
    /// last group leaving releases the backend state and the container forgets its backend.</summary>
    internal void DetachGroupLocked(VfioGroup group)
    {
        group.GroupLock.AssertHeld();
        using (_groupLock.EnterScope())
        {
            Iommu?.DetachGroup(group);
            if (group.Type == VfioGroupType.Iommu)
            {
                group.ReleaseDmaOwner();
            }
            _groups.Remove(group);
            if (_groups.Count == 0 && Iommu is not null)
            {
                Iommu.Release();
                Iommu = null;
                Driver = null;
                _subsystem.Trace.Emit(TraceKind.VfioReleaseIommu, 0, Diagnostics.TraceLog.F("container", Id));
            }
            if (_groups.Count == 0 && !FileOpen)
            {
                // vfio_container_put: the groups held the last references.
                _subsystem.ForgetContainer(this);
            }
        }
    }

    private Errno AttachAllLocked(IVfioIommu state, Host.Process? current)
    {
        _groupLock.AssertHeld();
        for (int i = 0; i < _groups.Count; i++)
        {
            Errno e = state.AttachGroup(_groups[i], current);
            if (e != Errno.None)
            {
                for (int j = i - 1; j >= 0; j--)
                {
                    state.DetachGroup(_groups[j]);
                }
                return e;
            }
        }
        return Errno.None;
    }

    private bool Allowed(IVfioIommuDriver driver) => _noIommu == driver.ServesNoIommu;

    /// <summary>Test hook: drops a group from the list without detaching it (breaks group-attached-once).</summary>
    internal void ForgetGroupForTest(VfioGroup group)
    {
        using (_groupLock.EnterScope())
        {
            _groups.Remove(group);
        }
    }

    /// <summary>Test hook: installs backend state without any group (breaks empty-container-clean).</summary>
    internal void SetBackendForTest(IVfioIommu state)
    {
        using (_groupLock.EnterScope())
        {
            Iommu = state;
        }
    }
}
