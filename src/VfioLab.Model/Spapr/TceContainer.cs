using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// One container's sPAPR TCE state (struct tce_container, drivers/vfio/vfio_iommu_spapr_tce.c): the attached
/// groups (PEs, each with its <see cref="TceTableGroup"/>), the DMA windows the container created and programs
/// into every PE (<c>tables[]</c>), whether it is enabled, the mm it serves, the <c>locked_vm</c> pages v1's
/// ENABLE charged, and the pre-registered regions it holds (<c>prereg_list</c>, v2).
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c> (<c>container-&gt;lock</c>, rank <see cref="LockRank.SpaprContainer"/>) protects every
/// mutable field; the model takes it for every ioctl (Linux leaves MAP/UNMAP unlocked). Lock order: the VFIO
/// container's group lock, this lock, an mm's mmap lock (pinning, accounting), a TCE table's lock, the
/// per-mm region list, host memory. Never change: <see cref="V2"/>, <see cref="ContainerId"/>, the driver.
/// </remarks>
internal sealed partial class TceContainer : IVfioIommu, IVfioIommuInspection
{
    private readonly OrderedLock _lock = new(LockRank.SpaprContainer);
    private readonly List<TceGroup> _groups = [];
    private readonly TceTable?[] _tables = new TceTable?[TceTableGroup.MaxWindows];
    private readonly AddressSpace?[] _tableMm = new AddressSpace?[TceTableGroup.MaxWindows];
    private readonly List<MmIommuRegion> _prereg = [];
    private readonly VfioIommuSpaprTceDriver _driver;
    private bool _enabled;
    private bool _defWindowPending;
    private ulong _lockedPages;
    private AddressSpace? _lockedMm;
    private AddressSpace? _mm;
    private AddressSpace? _firstUser;
    private bool _released;

    public TceContainer(Machine machine, VfioIommuSpaprTceDriver driver, bool v2, int containerId)
    {
        Machine = machine;
        _driver = driver;
        V2 = v2;
        ContainerId = containerId;
    }

    /// <summary>The host.</summary>
    public Machine Machine { get; }

    /// <summary>VFIO_SPAPR_TCE_v2_IOMMU: pre-registration, dynamic windows, the userspace view.</summary>
    public bool V2 { get; }

    /// <summary>The VFIO container's number, for traces.</summary>
    public int ContainerId { get; }

    /// <inheritdoc />
    /// <remarks>For sPAPR: valid TCEs over the container's windows.</remarks>
    public ulong MappingCount
    {
        get
        {
            using (_lock.EnterScope())
            {
                ulong n = 0;
                foreach (TceTable? t in _tables)
                {
                    n += t?.ValidEntries ?? 0;
                }
                return n;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>sPAPR has no mapping budget: free TCEs over the container's windows.</remarks>
    public ulong DmaAvail
    {
        get
        {
            using (_lock.EnterScope())
            {
                ulong n = 0;
                foreach (TceTable? t in _tables)
                {
                    n += t is null ? 0 : t.Size - t.ValidEntries;
                }
                return n;
            }
        }
    }

    private SpaprBehavior Behavior => _driver.Behavior;

    private int PageShift => Machine.PageShift;

    private TraceLog Trace => Machine.Trace;

    /// <inheritdoc />
    /// <remarks>With a container: both sPAPR types 1, the rest 0 (EEH is not modelled).</remarks>
    public long CheckExtension(ulong extension) => _driver.CheckExtension(extension);

    /// <inheritdoc />
    public void RegisterDevice(VfioDevice device)
    {
    }

    /// <inheritdoc />
    public void UnregisterDevice(VfioDevice device)
    {
    }

    /// <summary>
    /// <c>tce_iommu_mm_set</c>: the first user's mm is recorded; another mm is EPERM. Under quirk
    /// <c>spapr-tce-current-mm</c> nothing is enforced (the first user is kept for the checks only).
    /// </summary>
    private Errno MmSetLocked(Process caller)
    {
        AssertLocked();
        AddressSpace? mm = caller.Mm;
        if (mm is null)
        {
            return Errno.ESRCH;
        }
        _firstUser ??= mm;
        if (!Behavior.ContainerRecordsMm)
        {
            return Errno.None;
        }
        if (_mm is not null)
        {
            return ReferenceEquals(_mm, mm) ? Errno.None : Errno.EPERM;
        }
        _mm = mm;
        Emit("spapr.mm_set", caller);
        return Errno.None;
    }

    /// <summary>The mm the container works on for <paramref name="caller"/>: the recorded one, or under the quirk
    /// the caller's own.</summary>
    private AddressSpace? WorkingMmLocked(Process? caller) => Behavior.ContainerRecordsMm ? _mm : caller?.Mm ?? _firstUser;

    /// <summary>
    /// <c>account_locked_vm</c>: charges (<paramref name="pages"/> &gt; 0) or un-charges <paramref name="mm"/>'s
    /// <c>locked_vm</c> under its mmap lock. A charge past the caller's RLIMIT_MEMLOCK without CAP_IPC_LOCK is
    /// ENOMEM and changes nothing. Un-charging never fails.
    /// </summary>
    private Errno AccountLockedVm(AddressSpace mm, Process? caller, long pages)
    {
        if (pages == 0)
        {
            return Errno.None;
        }
        mm.MmapWriteLock();
        try
        {
            if (pages > 0 && caller is not null && !caller.CapIpcLock)
            {
                ulong limit = caller.MemlockLimitPages;
                if ((ulong)pages > limit || mm.LockedVm > limit - (ulong)pages)
                {
                    Emit("rlimit_memlock_exceeded", caller, TraceLog.F("locked_vm", mm.LockedVm), TraceLog.F("pages", pages), TraceLog.F("limit", limit));
                    return Errno.ENOMEM;
                }
            }
            mm.AddLockedVmLocked(pages);
        }
        finally
        {
            mm.MmapWriteUnlock();
        }
        Emit(pages > 0 ? "charge" : "uncharge", caller, TraceLog.F("pages", Math.Abs(pages)), TraceLog.F("locked_vm", mm.LockedVm));
        return Errno.None;
    }

    private void AssertLocked() => System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread, "the container's sPAPR lock must be held");

    private void Emit(string kind, Process? process, params KeyValuePair<string, object>[] fields) =>
        Trace.EmitForContainer(kind, process?.Pid ?? 0, ContainerId, fields);

    /// <summary>One attached group (struct tce_iommu_group) with its PE.</summary>
    private sealed record TceGroup(VfioGroup Group, TceTableGroup TableGroup);
}
