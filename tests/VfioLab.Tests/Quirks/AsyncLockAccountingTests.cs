using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Quirks;

/// <summary>Quirk <c>async-lock-accounting</c> (seed 004, before 0cfef2b7410b): with the mmap lock held by another
/// thread, locked_vm updates wait on the workqueue, so MAP's limit check reads a stale counter; today accounting is
/// synchronous and the limit holds (spec §2.9, §5).</summary>
public sealed class AsyncLockAccountingTests
{
    private const ulong MiB = Type1TestHost.MiB;

    private static readonly string[] Quirk = [KernelSettings.QuirkAsyncLockAccounting];

    [Fact]
    public void HoldMmapLockForOtherThread_TryWriteLockFails_ReleaseRestores()
    {
        Type1TestHost t = QuirkCalls.Host([]);
        AddressSpace mm = t.Process.Mm!;
        Assert.False(mm.ReleaseMmapLockOfOtherThread());

        mm.HoldMmapLockForOtherThread();

        Assert.True(mm.IsMmapLockContended);
        Assert.False(mm.TryMmapWriteLock());
        Assert.False(mm.IsMmapWriteLockHeld);
        Assert.True(mm.ReleaseMmapLockOfOtherThread());
        Assert.False(mm.IsMmapLockContended);
        Assert.True(mm.TryMmapWriteLock());
        mm.MmapWriteUnlock();
    }

    [Fact]
    public void MapDma_Contended_Today_ChargesAtOnceAndRefusesPastLimit()
    {
        Type1TestHost t = QuirkCalls.Host([], memlock: 3 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);
        t.Process.Mm!.HoldMmapLockForOtherThread();

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 2 * MiB, buf + (2 * MiB), 2 * MiB));

        Assert.Equal(0, t.Machine.Work.Pending);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(512UL, t.TotalPins);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void MapDma_Contended_AsyncLockAccounting_RacesWorkerPastLimit()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk, memlock: 3 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);
        t.Process.Mm!.HoldMmapLockForOtherThread();

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));

        // The charge waits on the workqueue: locked_vm is below the truth.
        Assert.Equal(1, t.Machine.Work.Pending);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(["locked-vm-matches-charges"], QuirkCalls.Violations(t));

        // The second MAP's check reads 0 + 512 <= 768 and passes.
        Assert.Equal(0, t.Map(c, 2 * MiB, buf + (2 * MiB), 2 * MiB));
        Assert.Equal(2, t.Machine.Work.Pending);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.TotalPins);

        Assert.Equal(2, t.Machine.Work.RunAll());

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(["locked-vm-within-limit"], QuirkCalls.Violations(t));
        Assert.True(t.Process.Mm!.ReleaseMmapLockOfOtherThread());
    }

    [Fact]
    public void MapDma_Uncontended_AsyncLockAccounting_ChargesAtOnceAndPreCheckRefuses()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk, memlock: 3 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 2 * MiB, buf + (2 * MiB), 2 * MiB));

        Assert.Equal(0, t.Machine.Work.Pending);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(512UL, t.TotalPins);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void UnmapThenMap_Contended_AsyncLockAccounting_OverPenalisedUntilWorkerRuns()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk, memlock: 3 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        t.Process.Mm!.HoldMmapLockForOtherThread();

        Assert.Equal((0L, 2 * MiB), t.Unmap(c, 0, 2 * MiB));

        // Unpinned, but the un-charge waits: the counter is above the truth.
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(["locked-vm-matches-charges"], QuirkCalls.Violations(t));
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);

        Assert.Equal(1, t.Machine.Work.RunAll());

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Empty(QuirkCalls.Violations(t));
        Assert.True(t.Process.Mm!.ReleaseMmapLockOfOtherThread());
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(0, t.Machine.Work.Pending);
        Assert.Equal(512UL, t.LockedVmPages);
    }

    [Fact]
    public void DeferredCharge_OwnerExitsBeforeWorker_WorkerHoldsMmUntilItRuns()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        AddressSpace mm = t.Process.Mm!;
        mm.HoldMmapLockForOtherThread();
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        VfioLab.Type1.VfioIommu backend = t.Backend(c);

        t.Process.Exit();

        // exit released the container (unmapping: a second deferred un-charge) but the queued work still holds the mm.
        Assert.True(mm.IsAlive);
        Assert.Equal(0UL, backend.MappingCount);
        Assert.Equal(2, t.Machine.Work.RunAll());
        Assert.False(mm.IsAlive);
        Assert.Equal(0UL, mm.LockedVm);
        Assert.Equal(0UL, t.TotalPins);
    }
}
