using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Spapr;

/// <summary>
/// Whose memory one sPAPR TCE container works on and charges: the mm recorded on first use (<c>tce_iommu_mm_set</c>,
/// bc82d122ae4a), or under quirk <c>spapr-tce-current-mm</c> each caller's own, and <c>account_locked_vm</c>, the
/// charge and un-charge of an mm's <c>locked_vm</c> that ENABLE, table creation and pre-registration make.
/// </summary>
/// <remarks>Lock: the container's lock (<see cref="TceContext.Lock"/>) protects <c>_mm</c> and <c>_firstUser</c>;
/// every <c>*Locked</c> member asserts it. <see cref="Account"/> needs no container state: it takes the mm's mmap lock
/// for write (after this lock).</remarks>
internal sealed class TceContainerMm(TceContext ctx)
{
    private AddressSpace? _mm;
    private AddressSpace? _firstUser;

    /// <summary><c>container-&gt;mm</c>: the recorded mm, or null (always null under the quirk).</summary>
    public AddressSpace? RecordedLocked
    {
        get
        {
            ctx.AssertLocked();
            return _mm;
        }
    }

    /// <summary>The first user's mm, recorded for the checks in every profile.</summary>
    public AddressSpace? FirstUserLocked
    {
        get
        {
            ctx.AssertLocked();
            return _firstUser;
        }
    }

    /// <summary>The ioctl's first check: a call from an mm other than the recorded one (never under the quirk).</summary>
    public bool IsForeignLocked(Process caller)
    {
        ctx.AssertLocked();
        return ctx.Behavior.ContainerRecordsMm && _mm is not null && !ReferenceEquals(_mm, caller.Mm);
    }

    /// <summary>
    /// <c>tce_iommu_mm_set</c>: the first user's mm is recorded; another mm is EPERM; a caller without an mm ESRCH.
    /// Under quirk <c>spapr-tce-current-mm</c> nothing is enforced (the first user is kept for the checks only).
    /// </summary>
    public Errno SetLocked(Process caller)
    {
        ctx.AssertLocked();
        AddressSpace? mm = caller.Mm;
        if (mm is null)
        {
            return Refusals.Refuse(Errno.ESRCH, "tce_iommu_mm_set", "process {0} has no mm", (ulong)caller.Pid);
        }
        _firstUser ??= mm;
        if (!ctx.Behavior.ContainerRecordsMm)
        {
            return Errno.None;
        }
        if (_mm is not null)
        {
            return ReferenceEquals(_mm, mm)
                ? Errno.None
                : Refusals.Refuse(Errno.EPERM, "tce_iommu_mm_set", "process {0} is not in the mm the container recorded (its first user's)", (ulong)caller.Pid);
        }
        _mm = mm;
        ctx.Emit(TraceKind.SpaprMmSet, caller);
        return Errno.None;
    }

    /// <summary>The mm the container works on for <paramref name="caller"/>: the recorded one, or under the quirk
    /// the caller's own (the first user's for a call with no process).</summary>
    public AddressSpace? WorkingLocked(Process? caller)
    {
        ctx.AssertLocked();
        return ctx.Behavior.ContainerRecordsMm ? _mm : caller?.Mm ?? _firstUser;
    }

    /// <summary>
    /// <c>account_locked_vm</c>: charges (<paramref name="pages"/> &gt; 0) or un-charges <paramref name="mm"/>'s
    /// <c>locked_vm</c> under its mmap lock. A charge past the caller's RLIMIT_MEMLOCK without CAP_IPC_LOCK is
    /// ENOMEM and changes nothing. Un-charging never fails.
    /// </summary>
    public Errno Account(AddressSpace mm, Process? caller, long pages)
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
                    ctx.Emit(TraceKind.RlimitMemlockExceeded, caller, TraceLog.F("locked_vm", mm.LockedVm), TraceLog.F("pages", pages), TraceLog.F("limit", limit));
                    return Refusals.Refuse(Errno.ENOMEM, "account_locked_vm", "charging {0} pages would make locked_vm {1} pages, over RLIMIT_MEMLOCK {2} pages",
                        (ulong)pages, mm.LockedVm + (ulong)pages, limit);
                }
            }
            mm.AddLockedVmLocked(pages, caller is null || caller.CapIpcLock ? ulong.MaxValue : caller.MemlockLimitPages);
        }
        finally
        {
            mm.MmapWriteUnlock();
        }
        ctx.Emit(pages > 0 ? TraceKind.Charge : TraceKind.Uncharge, caller, TraceLog.F("pages", Math.Abs(pages)), TraceLog.F("locked_vm", mm.LockedVm));
        return Errno.None;
    }
}
