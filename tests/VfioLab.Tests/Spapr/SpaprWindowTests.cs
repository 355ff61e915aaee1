using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Iommu;

namespace VfioLab.Tests.Spapr;

/// <summary>v2 dynamic DMA windows: TCE_CREATE / TCE_REMOVE and the lazily created default window.</summary>
public sealed class SpaprWindowTests
{
    private const ulong GiB = SpaprTestHost.GiB;

    [Fact]
    public void Create_AfterCancellingTheDefault_TakesSlotZeroAtTce32Start()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));   // pending default window: cancelled
        (long ret, ulong start) = h.Create(c, 16, 1 * GiB);
        Assert.Equal(0, ret);
        Assert.Equal(0UL, start);
        (ret, start) = h.Create(c, 16, 64 * GiB, levels: 2);
        Assert.Equal(0, ret);
        Assert.Equal(TceTableGroup.BypassBase, start);
        h.AssertClean();
    }

    [Fact]
    public void Create_WithTheDefaultPending_CreatesItFirst()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        (long ret, ulong start) = h.Create(c, 16, 64 * GiB, levels: 2);
        Assert.Equal(0, ret);
        Assert.Equal(TceTableGroup.BypassBase, start);
        TceTable? def = h.Pe(SpaprTestHost.GpuGroup).Windows[0];
        Assert.NotNull(def);
        Assert.Equal(12, def!.PageShift);
        Assert.Equal(2 * GiB, def.Window.Last + 1);
    }

    [Fact]
    public void Create_BothSlotsTaken_ReturnsENOSPC()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Create(c, 16, 64 * GiB).Ret);
        StateDigest before = h.Digest();
        Assert.Equal(Errno.ENOSPC.AsReturn(), h.Create(c, 16, 1 * GiB).Ret);
        Assert.Null(h.Digest().FirstDifference(before));
    }

    [Theory]
    [InlineData(13u, 1UL << 30, 1u)]    // TCE size the PHB lacks
    [InlineData(16u, 3UL << 30, 1u)]    // not a power of two
    [InlineData(16u, 1UL << 30, 0u)]    // no level
    [InlineData(16u, 1UL << 30, 6u)]    // more than five levels
    [InlineData(64u, 1UL << 30, 1u)]    // shift past 63
    public void Create_BadGeometry_ReturnsEINVAL(uint pageShift, ulong size, uint levels)
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Create(c, pageShift, size, levels).Ret);
        Assert.Null(h.Digest().FirstDifference(before));
        Assert.Equal(0UL, h.LockedVmPages);
    }

    [Fact]
    public void Create_Flags_ReturnsEINVAL()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Create(c, 16, 1 * GiB, flags: 1).Ret);
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);
    }

    [Fact]
    public void Create_TablePastMemlock_ReturnsENOMEMWithNothingCharged()
    {
        var h = new SpaprTestHost(memlock: 1UL << 20);
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));
        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Create(c, 12, 64 * GiB).Ret);
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);
    }

    [Fact]
    public void Create_TooDeepForThePlatform_ReturnsEINVALAndLeaksTheCharge()
    {
        // get_table_size accepts it, the charge is taken, pnv's table allocation refuses (55-bit rule), and
        // tce_iommu_create_table returns without giving the charge back.
        var h = new SpaprTestHost(capIpcLock: true);
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Create(c, 12, 1UL << 62, levels: 5).Ret);
        Assert.NotEqual(0UL, h.LockedVmPages);
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);
        h.AssertClean();
    }

    [Fact]
    public void Remove_NoWindowHoldsTheAddress_ReturnsEINVAL()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Create(c, 16, 1 * GiB).Ret);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Remove(c, TceTableGroup.BypassBase + (2 * GiB)));
        Assert.NotNull(h.Pe(SpaprTestHost.GpuGroup).Windows[1]);
    }

    [Fact]
    public void Remove_AnAddressInsideTheWindow_RemovesIt()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1UL << 20);
        Assert.Equal(0, h.Register(c, ram, 1UL << 20));
        (long ret, ulong start) = h.Create(c, 16, 1 * GiB);
        Assert.Equal(0, ret);
        Assert.Equal(0, h.Map(c, start, ram, 1UL << 20));
        ulong lockedBefore = h.LockedVmPages;
        Assert.Equal(0, h.Remove(c, start + 0x10000));
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[1]);
        Assert.True(h.LockedVmPages < lockedBefore);
        Assert.Equal(1UL, Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions).Mapped);
        h.AssertClean();
    }

    [Fact]
    public void Create_InjectedTableAllocationFailure_ReturnsENOMEMAndLeaksTheCharge()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));
        h.Host.Faults.Arm(1, FaultSite.TceTableAlloc);
        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Create(c, 16, 1 * GiB).Ret);
        Assert.Equal(Assert.Single(h.Driver.Mms.Leaks).Value, h.LockedVmPages);
        h.AssertClean();
    }

    [Fact]
    public void Create_InjectedSetWindowFailure_UnwindsEverything()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(0, h.Remove(c, 0));
        StateDigest before = h.Digest();
        h.Host.Faults.Arm(1, FaultSite.TceSetWindow);
        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Create(c, 16, 1 * GiB).Ret);
        Assert.Null(h.Digest().FirstDifference(before));
        Assert.Equal(0UL, h.LockedVmPages);
    }
}
