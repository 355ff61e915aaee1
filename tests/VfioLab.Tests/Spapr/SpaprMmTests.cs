using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Simulation;

namespace VfioLab.Tests.Spapr;

/// <summary>container-single-mm: the first user's mm is recorded, a forked child gets EPERM (seed 002), and
/// quirk <c>spapr-tce-current-mm</c> brings back the behaviour before the container recorded it.</summary>
public sealed class SpaprMmTests
{
    private const ulong KiB = SpaprTestHost.KiB;

    [Fact]
    public void MapDma_FromForkedChild_ReturnsEPERM()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(128 * KiB);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));
        ISyscallSurface child = h.Sys.Fork();
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0x10000, buf + (64 * KiB), 64 * KiB, sys: child));
        Assert.Equal(Errno.EPERM.AsReturn(), h.Unmap(c, 0, 64 * KiB, sys: child).Ret);
        Assert.Null(h.Digest().FirstDifference(before));
        h.AssertClean();
    }

    [Fact]
    public void RegisterMemory_FromForkedChild_ReturnsEPERM()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(128 * KiB);
        Assert.Equal(0, h.Register(c, ram, 64 * KiB));
        ISyscallSurface child = h.Sys.Fork();
        Assert.Equal(Errno.EPERM.AsReturn(), h.Register(c, ram + (64 * KiB), 64 * KiB, sys: child));
        Assert.Equal(Errno.EPERM.AsReturn(), h.Create(c, 16, 1UL << 30, sys: child).Ret);
        Assert.Equal(1UL, h.PinnedFrames);
        h.AssertClean();
    }

    [Fact]
    public void Exit_OwnerWhileChildHoldsTheFds_ChildStillGetsEPERMAndCloseReleasesAll()
    {
        var h = new SpaprTestHost();
        (int c, int g) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1UL << 20);
        Assert.Equal(0, h.Register(c, ram, 1UL << 20));
        Assert.Equal(0, h.Map(c, 0, ram, 1UL << 20));
        ISyscallSurface child = h.Sys.Fork();
        h.Sys.Exit();
        Assert.Equal(16UL, h.PinnedFrames);   // the child's fds keep the container
        Assert.Equal(Errno.EPERM.AsReturn(), h.Unmap(c, 0, 1UL << 20, sys: child).Ret);
        Assert.Equal(0, child.Close(g));
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        h.AssertClean();
    }

    [Fact]
    public void Exit_OwnerOfV1AndV2Containers_ReleasesEverything()
    {
        var h = new SpaprTestHost();
        (int v1, _) = h.Container(v2: false);
        (int v2, _) = h.Container(v2: true, group: SpaprTestHost.NicGroup);
        ulong ram = h.MmapAnonymous(2UL << 20);
        Assert.Equal(0, h.Enable(v1));
        Assert.Equal(0, h.Map(v1, 0, ram, 1UL << 20));
        Assert.Equal(0, h.Register(v2, ram + (1UL << 20), 1UL << 20));
        Assert.Equal(0, h.Map(v2, 0, ram + (1UL << 20), 1UL << 20));
        Assert.NotEqual(0UL, h.TotalPins);
        h.Sys.Exit();
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.Empty(h.Driver.Containers);
        Assert.False(h.Pe(SpaprTestHost.GpuGroup).Owned);
        h.AssertClean();
    }

    [Fact]
    public void MapDma_FromForkedChildUnderQuirk_MapsTheChildsPagesAndBreaksSingleMm()
    {
        var h = new SpaprTestHost(kernel: new KernelSettings(KernelSettings.Seeds, [KernelSettings.QuirkSpaprTceCurrentMm]));
        (int c, _) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(128 * KiB);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));
        h.AssertClean();
        ISyscallSurface child = h.Sys.Fork();
        Assert.Equal(0, h.Map(c, 0x10000, buf + (64 * KiB), 64 * KiB, sys: child));
        Assert.Equal(32UL, h.ValidTces());
        h.AssertBroken("container-single-mm");
        Assert.Equal(0, h.Unmap(c, 0x10000, 64 * KiB, sys: child).Ret);
        h.AssertClean();
    }
}
