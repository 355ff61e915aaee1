using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Type1;

/// <summary>
/// The locked-memory ledger of one type1 container (<c>vfio_lock_acct</c>, <c>vfio_change_dma_owner</c>): each
/// mapping's charge (<see cref="VfioDma.LockedVm"/>) against its owner mm's <c>locked_vm</c> and RLIMIT_MEMLOCK,
/// synchronous since 0cfef2b7410b (seed 004), or deferred to a work item under quirk <c>async-lock-accounting</c>.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>), which protects each mapping's
/// <see cref="VfioDma.LockedVm"/>, <see cref="VfioDma.Mm"/>, <see cref="VfioDma.Task"/> and
/// <see cref="VfioDma.LockCap"/>; every member asserts it. Its own state is none: the ledger's entries are the
/// mappings' <c>locked_vm</c>, and the mm's counter moves under the mm's mmap lock for write, taken inside (order:
/// this lock, then the mmap lock).
/// </remarks>
internal sealed class LockedMemoryAccounting(Type1Context ctx)
{
    /// <summary>
    /// vfio_lock_acct: charges (or, negative, un-charges) <paramref name="pages"/> to the mapping's owner
    /// mm, synchronously (0cfef2b7410b, seed 004). An increment fails ENOMEM past the owner's
    /// RLIMIT_MEMLOCK unless the mapping has CAP_IPC_LOCK, or EINTR (killable mmap lock; the
    /// <c>lock_acct</c> fault site). Async callers (unpin paths) get ESRCH when the mm is gone. Under
    /// <see cref="Type1Behavior.ExecLockedVmUnderflow"/> the target is the owner task's current mm (before
    /// 046eca5018f8, v6.3), ESRCH when the task has none. <paramref name="charges"/>: how many of the kernel's
    /// per-chunk charges an increment stands for (MAP charges a GUP batch's chunks at once, issue 16); the fault site
    /// is asked once for each, as the kernel's would be, and any firing refuses the whole increment.
    /// </summary>
    public Errno LockAcctLocked(VfioDma dma, long pages, bool async, int charges = 1)
    {
        ctx.AssertLocked();
        if (pages == 0)
        {
            return Errno.None;
        }
        AddressSpace? target = ctx.Behavior.ExecLockedVmUnderflow ? dma.Task.Mm : dma.Mm;
        if (target is null)
        {
            return Refusals.Refuse(Errno.ESRCH, "vfio_lock_acct", "the owner task {0} has no mm to charge", (ulong)dma.Task.Pid,
                source: ctx.Behavior.ExecLockedVmUnderflow ? "quirk exec-locked-vm-underflow (before 046eca5018f8, v6.3)" : null);
        }
        AddressSpace mm = target;
        if (ctx.Behavior.AsyncLockAccounting)
        {
            if (async && !mm.TryGetUser())
            {
                return RefuseNoUsers(dma);
            }
            return LockAcctOrDeferLocked(dma, mm, pages, async);
        }
        // The kernel's async caller holds a user reference on the mm around the charge (mmget_not_zero ... mmput) so that
        // exit cannot tear it down meanwhile. Here the charge needs none (issue 16's 4 KiB pair: two atomic operations
        // on every UNMAP): it tests that the mm lives, then charges under the mm's mmap lock for write; an exit dropping
        // the last user in between tears the mm down only once that lock is released, after the charge, which is the
        // kernel's own outcome when its mmput is the last one (the charge applied, then the mm gone; locked_vm stays
        // readable). Nothing is deferred on this path, so nothing needs the reference afterwards.
        if (async && !mm.IsAlive)
        {
            return RefuseNoUsers(dma);
        }
        for (int i = 0; pages > 0 && i < charges; i++)
        {
            if (ctx.Faults.ShouldFail(FaultSite.LockAcct))
            {
                return Refusals.Refuse(Errno.EINTR, "vfio_lock_acct", "a fatal signal while waiting for the mmap lock to charge {0} pages (injected)", (ulong)pages);
            }
        }
        mm.MmapWriteLock();
        try
        {
            if (pages > 0 && !dma.LockCap)
            {
                ulong limit = dma.Task.MemlockLimitPages;
                if ((ulong)pages > limit || mm.LockedVm > limit - (ulong)pages)
                {
                    if (ctx.Trace.Enabled)
                    {
                        ctx.Emit(TraceKind.RlimitMemlockExceeded, dma.Task, TraceLog.F("locked_vm", mm.LockedVm), TraceLog.F("pages", pages),
                            TraceLog.F("limit", limit));
                    }
                    return RefuseMemlock("vfio_lock_acct", mm.LockedVm, (ulong)pages, limit);
                }
            }
            mm.AddLockedVmLocked(pages, ChargeLimit(dma));
        }
        finally
        {
            mm.MmapWriteUnlock();
        }
        dma.LockedVm += pages;
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(pages > 0 ? TraceKind.Charge : TraceKind.Uncharge, dma.Task, TraceLog.F("pages", Math.Abs(pages)), TraceLog.F("locked_vm", mm.LockedVm));
        }
        return Errno.None;
    }

    private static Errno RefuseNoUsers(VfioDma dma) =>
        Refusals.Refuse(Errno.ESRCH, "vfio_lock_acct", "the owner's mm (process {0}) has no users left", (ulong)dma.Task.Pid);

    /// <summary>
    /// The check <c>vfio_pin_pages_remote</c> makes before pinning more of a chunk: whether the caller's
    /// <c>locked_vm</c> plus the <paramref name="pages"/> the chunk would charge passes <paramref name="limit"/>
    /// (the caller's RLIMIT_MEMLOCK in pages, read once per MAP), with an overflow counted as passing. A mapping with
    /// CAP_IPC_LOCK never passes it. Traced when it does.
    /// </summary>
    public bool ExceedsLimitLocked(VfioDma dma, AddressSpace mm, long pages, ulong limit)
    {
        ctx.AssertLocked();
        if (WithinLimitLocked(dma, mm, pages, limit))
        {
            return false;
        }
        ulong lockedVm = mm.LockedVm;
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.RlimitMemlockExceeded, dma.Task, TraceLog.F("locked_vm", lockedVm), TraceLog.F("pages", pages), TraceLog.F("limit", limit));
        }
        return true;
    }

    /// <summary>Whether <see cref="ExceedsLimitLocked"/> passes <paramref name="pages"/> (nothing traced): then it passes
    /// every count from 0 to <paramref name="pages"/> too, so a MAP batch whose whole charge passes needs no check per
    /// chunk (DmaPinning).</summary>
    public bool WithinLimitLocked(VfioDma dma, AddressSpace mm, long pages, ulong limit)
    {
        ctx.AssertLocked();
        if (dma.LockCap)
        {
            return true;
        }
        ulong lockedVm = mm.LockedVm;
        ulong total = lockedVm + (ulong)pages;
        return total <= limit && total >= lockedVm;
    }

    /// <summary>
    /// vfio_change_dma_owner (v6.3+, MAP_DMA with VADDR): a mapping re-validated from another mm moves its whole
    /// charge there, charged to the new owner first (ENOMEM, EINTR: nothing changes) and then un-charged from the old
    /// owner's mm if it still lives. The mapping takes the caller as its task, its mm and CAP_IPC_LOCK. A caller
    /// without an mm, or of the same mm, changes nothing.
    /// </summary>
    public Errno ChangeOwnerLocked(VfioDma dma, Process caller)
    {
        ctx.AssertLocked();
        AddressSpace? mm = caller.Mm;
        if (mm is null || ReferenceEquals(mm, dma.Mm))
        {
            return Errno.None;
        }
        bool lockCap = caller.CapIpcLock;
        long pages = dma.LockedVm;
        if (pages != 0)
        {
            var probe = new VfioDma(dma.Range, dma.Vaddr, dma.Prot, caller, mm, lockCap, ctx.PageShift);
            Errno e = LockAcctLocked(probe, pages, async: false);
            if (e != Errno.None)
            {
                return e;
            }
            // The old owner's charge goes only if its mm still lives.
            LockAcctLocked(dma, -pages, async: true);
        }
        dma.Task = caller;
        dma.Mm = mm;
        dma.LockCap = lockCap;
        dma.LockedVm = pages;
        return Errno.None;
    }

    /// <summary>
    /// vfio_lock_acct before 0cfef2b7410b (seed 004): never fails and checks no limit (MAP's pre-check against the
    /// caller's counter is the only one). It tries the mmap lock; when another thread holds it, the update is queued
    /// on <c>Machine.Work</c> with a user reference on the mm (vfio_lock_acct_bg) and <c>locked_vm</c> lags until it
    /// runs. The mapping's own count moves at once: it is what the mm will be charged. Takes over the async
    /// caller's user reference.
    /// </summary>
    private Errno LockAcctOrDeferLocked(VfioDma dma, AddressSpace mm, long pages, bool async)
    {
        ctx.AssertLocked();
        dma.LockedVm += pages;
        if (mm.TryMmapWriteLock())
        {
            try
            {
                mm.AddLockedVmLocked(pages, ChargeLimit(dma));
            }
            finally
            {
                mm.MmapWriteUnlock();
                if (async)
                {
                    mm.PutUser();
                }
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(pages > 0 ? TraceKind.Charge : TraceKind.Uncharge, dma.Task, TraceLog.F("pages", Math.Abs(pages)), TraceLog.F("locked_vm", mm.LockedVm));
            }
            return Errno.None;
        }
        // The worker holds the mm (get_task_mm ... mmput): a user reference, the async caller's if it took one.
        if (!async && !mm.TryGetUser())
        {
            return Errno.None;
        }
        if (ctx.Trace.Enabled)
        {
            ctx.Emit(TraceKind.LockAcctDeferred, dma.Task, TraceLog.F("pages", pages), TraceLog.F("locked_vm", mm.LockedVm));
        }
        ctx.Machine.Work.Queue("vfio_lock_acct_bg", () =>
        {
            mm.MmapWriteLock();
            try
            {
                mm.AddLockedVmLocked(pages, ChargeLimit(dma));
            }
            finally
            {
                mm.MmapWriteUnlock();
                mm.PutUser();
            }
        });
        return Errno.None;
    }

    /// <summary>ENOMEM for a charge past RLIMIT_MEMLOCK, recorded for <paramref name="check"/> with the numbers.</summary>
    public static Errno RefuseMemlock(string check, ulong lockedVm, ulong pages, ulong limit) =>
        Refusals.Refuse(Errno.ENOMEM, check, "charging {0} pages would make locked_vm {1} pages, over RLIMIT_MEMLOCK {2} pages", pages, lockedVm + pages, limit);

    /// <summary>The RLIMIT_MEMLOCK a charge by <paramref name="dma"/>'s task is judged against: none with CAP_IPC_LOCK.</summary>
    private static ulong ChargeLimit(VfioDma dma) => dma.LockCap ? ulong.MaxValue : dma.Task.MemlockLimitPages;
}
