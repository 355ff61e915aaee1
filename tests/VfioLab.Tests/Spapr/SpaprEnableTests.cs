using VfioLab.Abi;

namespace VfioLab.Tests.Spapr;

/// <summary>v1 VFIO_IOMMU_ENABLE / DISABLE: the whole default window charged up front.</summary>
public sealed class SpaprEnableTests
{
    [Fact]
    public void Enable_V1_ChargesTheWholeDefaultWindow()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(2 * SpaprTestHost.GiB, h.LockedVmBytes);
        h.AssertClean();
    }

    [Fact]
    public void Enable_Twice_ReturnsEBUSY()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(Errno.EBUSY.AsReturn(), h.Enable(c));
        Assert.Equal(2 * SpaprTestHost.GiB, h.LockedVmBytes);
    }

    [Fact]
    public void Enable_PastMemlock_ReturnsENOMEMAndStaysDisabled()
    {
        var h = new SpaprTestHost(memlock: 1 * SpaprTestHost.GiB);
        (int c, _) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(64 * SpaprTestHost.KiB);
        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Enable(c));
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0, buf, 64 * SpaprTestHost.KiB));
        h.AssertClean();
    }

    [Fact]
    public void Enable_PastMemlockWithCapIpcLock_Succeeds()
    {
        var h = new SpaprTestHost(memlock: 0, capIpcLock: true);
        (int c, _) = h.Container(v2: false);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(2 * SpaprTestHost.GiB, h.LockedVmBytes);
        h.AssertClean();
    }

    [Fact]
    public void Disable_AfterEnable_ReturnsTheChargeAndKeepsMappings()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(64 * SpaprTestHost.KiB);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * SpaprTestHost.KiB));
        Assert.Equal(0, h.Disable(c));
        Assert.Equal(8 * SpaprTestHost.MiB, h.LockedVmBytes);   // the default window's table stays charged
        Assert.Equal(16UL, h.ValidTces());
        Assert.Equal(Errno.EPERM.AsReturn(), h.Unmap(c, 0, 64 * SpaprTestHost.KiB).Ret);
        h.AssertClean();
    }

    [Fact]
    public void Release_EnabledContainerWithMappings_ReturnsEverything()
    {
        var h = new SpaprTestHost();
        (int c, int g) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(1 * SpaprTestHost.MiB);
        Assert.Equal(0, h.Enable(c));
        Assert.Equal(0, h.Map(c, 0x100000, buf, 1 * SpaprTestHost.MiB));
        Assert.Equal(256UL, h.TotalPins);
        Assert.Equal(0, h.Sys.Close(g));
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.False(h.Pe(SpaprTestHost.GpuGroup).Owned);
        h.AssertClean();
    }
}
