using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Quirks;

/// <summary>Quirk <c>exec-locked-vm-underflow</c> (before 046eca5018f8, v6.3): accounting follows the owner task's
/// current mm, so after exec the un-charge of an old mapping hits the fresh mm and wraps it below zero; today the
/// mm saved at MAP is charged and, once dead, skipped (spec §3.12).</summary>
public sealed class ExecLockedVmUnderflowTests
{
    private const ulong MiB = Type1TestHost.MiB;

    private static readonly string[] Quirk = [KernelSettings.QuirkExecLockedVmUnderflow];

    [Fact]
    public void Exec_GivesFreshAddressSpaceKeepingPidAndFds()
    {
        Type1TestHost t = QuirkCalls.Host([]);
        (int c, _) = t.Container();
        AddressSpace old = t.Process.Mm!;
        ulong buf = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(Errno.None, t.Process.Exec());

        AddressSpace fresh = t.Process.Mm!;
        Assert.NotSame(old, fresh);
        Assert.Same(fresh, t.Process.LastMm);
        Assert.False(old.IsAlive);
        Assert.Equal(0UL, fresh.LockedVm);
        Assert.Equal(256UL, old.LockedVm);
        // Pinned by type1, so still pinned although the old mm is gone.
        Assert.Equal(256UL, t.TotalPins);
        // The container fd survived exec.
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        // The old memory is gone from the new program.
        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 1 * MiB, buf, 1 * MiB));
    }

    [Fact]
    public void Exec_ExitedProcess_ReturnsESRCH()
    {
        Type1TestHost t = QuirkCalls.Host([]);
        t.Process.Exit();

        Assert.Equal(Errno.ESRCH, t.Process.Exec());
        Assert.Null(t.Process.Mm);
    }

    [Fact]
    public void UnmapAfterExec_Today_SkipsDeadMmAndNewMapsWork()
    {
        Type1TestHost t = QuirkCalls.Host([], memlock: 2 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        AddressSpace old = t.Process.Mm!;
        Assert.Equal(Errno.None, t.Process.Exec());

        Assert.Equal((0L, 1 * MiB), t.Unmap(c, 0, 1 * MiB));

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(256UL, old.LockedVm);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Empty(QuirkCalls.Violations(t));
        ulong fresh = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, fresh, 2 * MiB));
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void UnmapAfterExec_ExecLockedVmUnderflow_WrapsNewMmAndNextMapFailsENOMEM()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk, memlock: 2 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        AddressSpace old = t.Process.Mm!;
        Assert.Equal(Errno.None, t.Process.Exec());
        Assert.Empty(QuirkCalls.Violations(t));

        Assert.Equal((0L, 1 * MiB), t.Unmap(c, 0, 1 * MiB));

        // 256 pages taken from a counter at 0: it wraps.
        Assert.Equal(unchecked(0UL - 256UL), t.LockedVmPages);
        Assert.Equal(256UL, old.LockedVm);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(["locked-vm-matches-charges", "locked-vm-within-limit"], QuirkCalls.Violations(t));
        ulong fresh = t.MmapAnonymous(2 * MiB);
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, fresh, 2 * MiB));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(unchecked(0UL - 256UL), t.LockedVmPages);
    }

    [Fact]
    public void MapAfterExec_ExecLockedVmUnderflow_ChargesTheNewMm()
    {
        // Before the exec nothing differs: the task's current mm is the mm of the MAP.
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal((0L, 1 * MiB), t.Unmap(c, 0, 1 * MiB));
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void UnmapAfterOwnerExit_ExecLockedVmUnderflow_UnchargeIsSkipped()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        AddressSpace old = t.Process.Mm!;
        t.Process.Exit();

        // The task has no mm: vfio_lock_acct answers ESRCH, which unmap ignores.
        Assert.Equal((0L, 1 * MiB), QuirkCalls.Unmap(child!, c, 0, 1 * MiB));

        Assert.Equal(256UL, old.LockedVm);
        Assert.Equal(0UL, child!.Mm!.LockedVm);
        Assert.Equal(0UL, t.TotalPins);
    }
}
