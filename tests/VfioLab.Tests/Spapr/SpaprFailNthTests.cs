using VfioLab.Abi;
using VfioLab.Checks;

namespace VfioLab.Tests.Spapr;

/// <summary>Fail-nth sweeps (STYLE.md 14) over sPAPR's multi-step operations: every injected failure must
/// leave the state exactly as before; the sweep ends when the operation succeeds.</summary>
public sealed class SpaprFailNthTests
{
    private const ulong KiB = SpaprTestHost.KiB;
    private const ulong MiB = SpaprTestHost.MiB;

    [Fact]
    public void MapDmaV1_EveryFailurePoint_LeavesStateUnchanged()
    {
        int failures = Sweep(h =>
        {
            (int c, _) = h.Container(v2: false);
            Assert.Equal(0, h.Enable(c));
            ulong buf = h.MmapAnonymous(4 * MiB);
            Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));   // default window in place before the sweep
            return () => h.Map(c, 0x100000, buf, 4 * MiB);
        });
        Assert.True(failures >= 1);
    }

    [Fact]
    public void RegisterMemory_EveryFailurePoint_LeavesStateUnchanged()
    {
        int failures = Sweep(h =>
        {
            (int c, _) = h.Container(v2: true);
            ulong ram = h.MmapAnonymous(5 * MiB);
            Assert.Equal(0, h.Register(c, ram + (4 * MiB), 1 * MiB));   // records the mm before the sweep
            return () => h.Register(c, ram, 4 * MiB);
        });
        Assert.True(failures >= 1);
    }

    [Fact]
    public void CreateWindow_EveryFailurePoint_LeavesStateUnchangedOrLeaksOnlyTheCharge()
    {
        for (long n = 1; ; n++)
        {
            var h = new SpaprTestHost();
            (int c, _) = h.Container(v2: true);
            Assert.Equal(0, h.Remove(c, 0));
            StateDigest before = h.Digest();
            h.Host.Faults.Arm(n);
            long ret = h.Create(c, 16, 1UL << 30).Ret;
            bool fired = h.Host.Faults.Fired;
            h.Host.Faults.Arm(0);
            if (!fired)
            {
                Assert.Equal(0, ret);
                return;
            }
            Assert.Equal(Errno.ENOMEM.AsReturn(), ret);
            if (h.Driver.Mms.Leaks.Count == 0)
            {
                Assert.Null(h.Digest().FirstDifference(before));
            }
            h.AssertClean();
        }
    }

    // Builds a fresh host per failure point n, runs the set-up, arms the n-th fallible call, runs the
    // operation: a failure must be a negative errno with the digest unchanged and invariants clean.
    private static int Sweep(Func<SpaprTestHost, Func<long>> setUp)
    {
        for (long n = 1; n < 10_000; n++)
        {
            var h = new SpaprTestHost();
            Func<long> op = setUp(h);
            StateDigest before = h.Digest();
            h.Host.Faults.Arm(n);
            long ret = op();
            bool fired = h.Host.Faults.Fired;
            h.Host.Faults.Arm(0);
            if (!fired)
            {
                Assert.Equal(0, ret);
                h.AssertClean();
                return (int)(n - 1);
            }
            // A failed registration may return GUP's positive partial count (see SpaprPreregTests).
            Assert.True(ret != 0, $"failure point {n}: the operation returned {ret}");
            Assert.True(h.Digest().FirstDifference(before) is null, $"failure point {n}: {h.Digest().FirstDifference(before)}");
            h.AssertClean();
        }
        throw new InvalidOperationException("the sweep did not end");
    }
}
