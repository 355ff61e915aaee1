using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// One container's sPAPR TCE backend (struct tce_container and <c>tce_iommu_driver_ops</c>,
/// drivers/vfio/vfio_iommu_spapr_tce.c): the ioctl dispatch with its mm check, GET_INFO, v1's ENABLE/DISABLE, and
/// attach_group, detach_group and release, each handed to the part that owns the state: <see cref="TceGroupSet"/> (the
/// PEs), <see cref="TceWindows"/> (<c>tables[]</c>, the default window), <see cref="TceMapping"/> (MAP, UNMAP),
/// <see cref="PreregisteredMemory"/> (v2 registration), <see cref="TceContainerMm"/> (the container's mm and
/// <c>locked_vm</c> charges).
/// </summary>
/// <remarks>
/// Lock: <see cref="TceContext.Lock"/> (<c>container-&gt;lock</c>, rank <see cref="LockRank.SpaprContainer"/>), one lock
/// for every part, taken for every ioctl (Linux leaves MAP/UNMAP unlocked); here it protects <c>_enabled</c>,
/// <c>_lockedPages</c>, <c>_lockedMm</c> and <c>_released</c>, and each part states its own fields. Lock order: the VFIO
/// container's group lock, this lock, an mm's mmap lock (pinning, accounting), a TCE table's lock, the per-mm region
/// list, host memory. Never change: <see cref="V2"/>, <see cref="ContainerId"/>, the parts.
/// </remarks>
internal sealed class TceContainer : IVfioIommu, IVfioIommuInspection
{
    private readonly TceContext _ctx;
    private readonly TceContainerMm _mm;
    private readonly TceGroupSet _groups;
    private readonly TceWindows _windows;
    private readonly TceMapping _mapping;
    private readonly PreregisteredMemory _prereg;
    private bool _enabled;
    private ulong _lockedPages;
    private AddressSpace? _lockedMm;
    private bool _released;

    public TceContainer(Machine machine, VfioIommuSpaprTceDriver driver, bool v2, int containerId)
    {
        _ctx = new TceContext(machine, driver, v2, containerId);
        _mm = new TceContainerMm(_ctx);
        _groups = new TceGroupSet(_ctx);
        _windows = new TceWindows(_ctx, _mm, _groups);
        _mapping = new TceMapping(_ctx, _mm, _windows);
        _prereg = new PreregisteredMemory(_ctx, _mm);
    }

    /// <summary>The host.</summary>
    public Machine Machine => _ctx.Machine;

    /// <summary>VFIO_SPAPR_TCE_v2_IOMMU: pre-registration, dynamic windows, the userspace view.</summary>
    public bool V2 => _ctx.V2;

    /// <summary>The VFIO container's number, for traces.</summary>
    public int ContainerId => _ctx.ContainerId;

    /// <inheritdoc />
    /// <remarks>For sPAPR: valid TCEs over the container's windows.</remarks>
    public ulong MappingCount
    {
        get { using (_ctx.Lock.EnterScope()) { return _windows.ValidEntriesLocked(); } }
    }

    /// <inheritdoc />
    /// <remarks>sPAPR has no mapping budget: free TCEs over the container's windows.</remarks>
    public ulong DmaAvail
    {
        get { using (_ctx.Lock.EnterScope()) { return _windows.FreeEntriesLocked(); } }
    }

    /// <summary>Whether <see cref="Release"/> has run.</summary>
    public bool IsReleased
    {
        get { using (_ctx.Lock.EnterScope()) { return _released; } }
    }

    /// <summary>Test hook: the first user's mm as recorded for the checks (under the quirk nothing else records it).</summary>
    internal AddressSpace? FirstUserForTest
    {
        get { using (_ctx.Lock.EnterScope()) { return _mm.FirstUserLocked; } }
    }

    /// <inheritdoc />
    /// <remarks>With a container: both sPAPR types 1, the rest 0 (EEH is not modelled).</remarks>
    public long CheckExtension(ulong extension) => _ctx.Driver.CheckExtension(extension);

    /// <inheritdoc />
    public void RegisterDevice(VfioDevice device)
    {
    }

    /// <inheritdoc />
    public void UnregisterDevice(VfioDevice device)
    {
    }

    /// <inheritdoc />
    /// <remarks>Every request is EPERM from an mm other than the container's (before anything else; not under
    /// quirk <c>spapr-tce-current-mm</c>). The v2-only requests (REGISTER/UNREGISTER_MEMORY, TCE_CREATE/REMOVE)
    /// and the v1-only ENABLE/DISABLE fall through to ENOTTY on the other version; VFIO_EEH_PE_OP is not
    /// modelled (ENOTTY). MAP and UNMAP are EPERM until the container is enabled (v1 ENABLE, v2 a registration).</remarks>
    public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument)
    {
        Process caller = context.Process;
        using (_ctx.Lock.EnterScope())
        {
            if (_mm.IsForeignLocked(caller))
            {
                _ctx.Emit(TraceKind.SpaprForeignMm, caller, TraceLog.F("request", request));
                return Refusals.RefuseReturn(Errno.EPERM, "tce_iommu_ioctl", "process {0} is not in the mm the container recorded (its first user's; bc82d122ae4a)",
                    (ulong)caller.Pid);
            }
            return request switch
            {
                VfioIoctl.IommuSpaprTceGetInfo => GetInfoLocked(ref argument).AsReturn(),
                VfioIoctl.IommuMapDma => _enabled ? _mapping.MapDmaIoctlLocked(caller, ref argument) : NotEnabled("MAP_DMA"),
                VfioIoctl.IommuUnmapDma => _enabled ? _mapping.UnmapDmaIoctlLocked(caller, ref argument) : NotEnabled("UNMAP_DMA"),
                VfioIoctl.IommuSpaprRegisterMemory when V2 => RegisterMemoryLocked(caller, ref argument),
                VfioIoctl.IommuSpaprUnregisterMemory when V2 => _prereg.UnregisterMemoryIoctlLocked(caller, ref argument).AsReturn(),
                VfioIoctl.IommuEnable when !V2 => EnableLocked(caller).AsReturn(),
                VfioIoctl.IommuDisable when !V2 => DisableIoctlLocked(),
                VfioIoctl.IommuSpaprTceCreate when V2 => _windows.CreateIoctlLocked(caller, ref argument).AsReturn(),
                VfioIoctl.IommuSpaprTceRemove when V2 => _windows.RemoveIoctlLocked(caller, ref argument).AsReturn(),
                _ => Refusals.RefuseReturn(Errno.ENOTTY, "tce_iommu_ioctl", "request 0x{0:x} is not an sPAPR TCE {4} ioctl", request, text: V2 ? "v2" : "v1"),
            };
        }
    }

    /// <summary>The decoded half of MAP_DMA (the typed entry point for tests and benchmarks): EPERM until enabled,
    /// then as the ioctl.</summary>
    public long MapDma(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        using (_ctx.Lock.EnterScope())
        {
            return _enabled ? _mapping.MapDmaLocked(caller, iova, vaddr, size, flags) : NotEnabled("MAP_DMA");
        }
    }

    private long NotEnabled(string request) => Refusals.RefuseReturn(Errno.EPERM, "tce_iommu_ioctl", V2
        ? "{4}: the v2 container is not enabled yet (no memory registered)"
        : "{4}: the v1 container is not enabled yet (VFIO_IOMMU_ENABLE)", text: request);

    /// <inheritdoc />
    /// <returns>EINVAL for an emulated (mdev) group; ENODEV for a group that is not a PE (no table group);
    /// EBUSY for a second group of a v1 container or a group already attached; the error of programming the
    /// container's windows into the PE (everything unwound).</returns>
    public Errno AttachGroup(VfioGroup group, Process? current)
    {
        if (group.Type == VfioGroupType.EmulatedIommu)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_attach_group", "group {0} is emulated (mdev); sPAPR takes only PEs", (ulong)group.Number);
        }
        using (_ctx.Lock.EnterScope())
        {
            TceTableGroup? tg = group.Backing.IommuGroup?.TableGroup;
            if (tg is null)
            {
                return Refusals.Refuse(Errno.ENODEV, "tce_iommu_attach_group", "group {0} is not a PE (no iommu_table_group)", (ulong)group.Number);
            }
            // v2 needs dynamic windows; every modelled PE (IODA2) has them, so that EINVAL cannot arise.
            if ((!V2 && _groups.CountLocked > 0) || _groups.ContainsLocked(group))
            {
                return Refusals.Refuse(Errno.EBUSY, "tce_iommu_attach_group", _groups.ContainsLocked(group)
                    ? "group {0} is already attached"
                    : "a v1 container takes one group; it has {1} already", (ulong)group.Number, (ulong)_groups.CountLocked);
            }
            bool first = _groups.CountLocked == 0;
            Errno ret = _groups.AttachLocked(group, tg, _windows.TablesLocked);
            if (first)
            {
                // tce_iommu_attach_group marks the default window pending whatever the take-over's outcome.
                _windows.MarkDefaultWindowPendingLocked();
            }
            if (ret != Errno.None)
            {
                return ret;
            }
            _ctx.Emit(TraceKind.SpaprAttachGroup, current, TraceLog.F("group", group.Number));
            return Errno.None;
        }
    }

    /// <inheritdoc />
    /// <remarks>The PE's windows are unset and the platform takes it back. Since 4ba2fdff2eb1 (v6.11,
    /// <see cref="SpaprBehavior.ClearTcesOnDetach"/>) every TCE of the container's tables is cleared first (v1 unpins,
    /// v2 drops the regions' mapping counts), also for the groups that stay; the tables themselves stay until the
    /// container is released. Before, the TCEs (and pins) stayed too.</remarks>
    public void DetachGroup(VfioGroup group)
    {
        using (_ctx.Lock.EnterScope())
        {
            if (_ctx.Behavior.ClearTcesOnDetach && _groups.ContainsLocked(group))
            {
                foreach (TceTable? t in _windows.TablesLocked)
                {
                    if (t is not null)
                    {
                        _windows.ClearLocked(t, t.Offset, t.Size, null);
                    }
                }
            }
            if (_groups.DetachLocked(group, _windows.TablesLocked))
            {
                _ctx.Emit(TraceKind.SpaprDetachGroup, null, TraceLog.F("group", group.Number));
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Every group is detached; every table is cleared (v1 unpins each TCE's page, v2 drops the
    /// regions' mapping counts) and freed (its charge returned); every region of the container's list is put
    /// (the last put unpins and un-charges it); v1's ENABLE charge is returned. Never fails.</remarks>
    public void Release()
    {
        List<VfioGroup> groups;
        using (_ctx.Lock.EnterScope())
        {
            groups = _groups.GroupsLocked();
        }
        foreach (VfioGroup g in groups)
        {
            DetachGroup(g);
        }
        using (_ctx.Lock.EnterScope())
        {
            _windows.ReleaseLocked();
            _prereg.ReleaseLocked();
            DisableLocked();
            _released = true;
        }
        _ctx.Driver.Forget(this);
    }

    /// <summary>The container's state, read under its lock.</summary>
    public TceContainerSnapshot Snapshot()
    {
        using (_ctx.Lock.EnterScope())
        {
            return new TceContainerSnapshot(ContainerId, V2, _enabled, _windows.DefaultWindowPendingLocked, _mm.RecordedLocked, _mm.FirstUserLocked,
                _lockedPages, _lockedMm, _groups.NumbersLocked(), _windows.SnapshotLocked(), _prereg.RegionsLocked());
        }
    }

    /// <summary>Test hook: marks <paramref name="region"/> released (<c>mapped</c> 0) while TCEs may still point into it,
    /// the state <c>mm_iommu_put</c>'s cmpxchg exists to prevent (breaks <c>prereg-not-released-while-mapped</c>).</summary>
    internal void MarkRegionReleasedForTest(MmIommuRegion region)
    {
        using (_ctx.Lock.EnterScope())
        {
            region.Mapped = 0;
        }
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_GET_INFO: ENXIO without a group, EFAULT (copy of 16 bytes), EINVAL (argsz &lt; 16).
    /// Reports the first PE's default window; a v2 container also gets the DDW flag and limits (page sizes,
    /// two windows, five levels), copied back only when argsz covers them (32 bytes), else 16 bytes.
    /// </summary>
    private Errno GetInfoLocked(ref IoctlArgument argument)
    {
        _ctx.AssertLocked();
        if (_groups.CountLocked == 0)
        {
            return Refusals.Refuse(Errno.ENXIO, "tce_iommu_ioctl", "SPAPR_TCE_GET_INFO: the container has no group");
        }
        TceTableGroup tg = _groups.FirstLocked;
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceInfo.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuSpaprTceInfo.MinSize]))
        {
            return Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "SPAPR_TCE_GET_INFO: copy_from_user of {0} bytes faulted", (ulong)VfioIommuSpaprTceInfo.MinSize);
        }
        VfioIommuSpaprTceInfo.TryRead(raw, VfioIommuSpaprTceInfo.MinSize, out VfioIommuSpaprTceInfo info);
        if (info.Argsz < VfioIommuSpaprTceInfo.MinSize)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_ioctl", "SPAPR_TCE_GET_INFO: argsz {0} is below minsz {1}", info.Argsz, (ulong)VfioIommuSpaprTceInfo.MinSize);
        }
        info.Dma32WindowStart = (uint)tg.Tce32Start;
        info.Dma32WindowSize = (uint)tg.Tce32Size;
        info.Flags = SpaprInfoFlags.None;
        info.Ddw = default;
        if (V2 && tg.MaxDynamicWindows > 0)
        {
            info.Flags |= SpaprInfoFlags.Ddw;
            info.Ddw.Pgsizes = tg.PgSizes;
            info.Ddw.MaxDynamicWindowsSupported = (uint)tg.MaxDynamicWindows;
            info.Ddw.Levels = TceTableGroup.MaxLevels;
        }
        int length = info.Argsz >= VfioIommuSpaprTceInfo.DdwMinSize ? VfioIommuSpaprTceInfo.DdwMinSize : VfioIommuSpaprTceInfo.MinSize;
        info.Write(raw);
        return argument.TryCopyTo(0, raw[..length])
            ? Errno.None
            : Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "SPAPR_TCE_GET_INFO: copy_to_user of {0} bytes faulted", (ulong)length);
    }

    // REGISTER_MEMORY enables a v2 container once a region is held.
    private long RegisterMemoryLocked(Process caller, ref IoctlArgument argument)
    {
        _ctx.AssertLocked();
        long ret = _prereg.RegisterMemoryIoctlLocked(caller, ref argument);
        if (ret == 0)
        {
            _enabled = true;
        }
        return ret;
    }

    /// <summary>
    /// <c>tce_iommu_enable</c> (v1 VFIO_IOMMU_ENABLE): EBUSY when enabled, ENODEV without a group, EPERM from
    /// another mm (<c>tce_iommu_mm_set</c>), ENOMEM past RLIMIT_MEMLOCK without CAP_IPC_LOCK. Charges the whole
    /// default window (<c>tce32_size &gt;&gt; PAGE_SHIFT</c>) once: the worst case the guest could map.
    /// </summary>
    private Errno EnableLocked(Process caller)
    {
        _ctx.AssertLocked();
        if (_enabled)
        {
            return Refusals.Refuse(Errno.EBUSY, "tce_iommu_enable", "the container is already enabled");
        }
        if (_groups.CountLocked == 0)
        {
            return Refusals.Refuse(Errno.ENODEV, "tce_iommu_enable", "the container has no group");
        }
        TceTableGroup tg = _groups.FirstLocked;
        if (tg.Tce32Size == 0)
        {
            return Refusals.Refuse(Errno.EPERM, "tce_iommu_enable", "the PE has no 32-bit default window to enable");
        }
        Errno e = _mm.SetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        AddressSpace mm = _mm.WorkingLocked(caller)!;
        ulong locked = tg.Tce32Size >> _ctx.PageShift;
        e = _mm.Account(mm, caller, (long)locked);
        if (e != Errno.None)
        {
            return e;
        }
        _lockedPages = locked;
        _lockedMm = mm;
        _enabled = true;
        _ctx.Emit(TraceKind.SpaprEnable, caller, TraceLog.F("locked_pages", locked));
        return Errno.None;
    }

    private long DisableIoctlLocked()
    {
        _ctx.AssertLocked();
        DisableLocked();
        return 0;
    }

    /// <summary><c>tce_iommu_disable</c>: returns ENABLE's charge. Mappings stay (MAP and UNMAP are EPERM
    /// until the next ENABLE). Never fails.</summary>
    private void DisableLocked()
    {
        _ctx.AssertLocked();
        if (!_enabled)
        {
            return;
        }
        _enabled = false;
        if (_lockedMm is not null)
        {
            _mm.Account(_lockedMm, null, -(long)_lockedPages);
        }
        _lockedPages = 0;
        _lockedMm = null;
    }
}
