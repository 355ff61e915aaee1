using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Spapr;

/// <summary>Registration, CHECK_EXTENSION, SET_IOMMU and GET_INFO of the sPAPR backend.</summary>
public sealed class SpaprBackendTests
{
    [Fact]
    public void CheckExtension_SpaprHost_AnswersSpaprTypesOnly()
    {
        var h = new SpaprTestHost();
        int c = h.Sys.Open("/dev/vfio/vfio");
        Assert.Equal(1, h.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.SpaprTceIommu));
        Assert.Equal(1, h.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.SpaprTceV2Iommu));
        Assert.Equal(0, h.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.Type1Iommu));
        Assert.Equal(0, h.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.Type1v2Iommu));
    }

    [Fact]
    public void SetIommu_Type1OnSpaprHost_ReturnsENODEV()
    {
        var h = new SpaprTestHost();
        int c = h.Sys.Open("/dev/vfio/vfio");
        int g = h.Sys.Open("/dev/vfio/1");
        Assert.Equal(0, h.SetContainer(g, c));
        Assert.Equal(Errno.ENODEV.AsReturn(), h.Sys.Ioctl(c, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
        Assert.False(h.Pe(SpaprTestHost.GpuGroup).Owned);
    }

    [Fact]
    public void SetIommu_V1SecondGroup_ReturnsEBUSY()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        int nic = h.Sys.Open("/dev/vfio/2");
        Assert.Equal(Errno.EBUSY.AsReturn(), h.SetContainer(nic, c));
        Assert.False(h.Pe(SpaprTestHost.NicGroup).Owned);
        Assert.True(h.Pe(SpaprTestHost.GpuGroup).Owned);
        h.AssertClean();
    }

    [Fact]
    public void SetContainer_V2SecondGroup_SharesWindows()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong buf = h.MmapAnonymous(1 * SpaprTestHost.MiB);
        Assert.Equal(0, h.Register(c, buf, 1 * SpaprTestHost.MiB));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * SpaprTestHost.KiB));
        int nic = h.Sys.Open("/dev/vfio/2");
        Assert.Equal(0, h.SetContainer(nic, c));
        Assert.Equal(16UL, h.ValidTces(SpaprTestHost.NicGroup));
        Assert.Same(h.Pe(SpaprTestHost.GpuGroup).Windows[0], h.Pe(SpaprTestHost.NicGroup).Windows[0]);
        h.AssertClean();
    }

    [Fact]
    public void UnsetContainer_V2OneOfTwoGroups_ClearsEveryTceForTheOtherToo()
    {
        // 4ba2fdff2eb1 (v6.11): tce_iommu_release_ownership clears each table before unsetting the window.
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong buf = h.MmapAnonymous(1 * SpaprTestHost.MiB);
        Assert.Equal(0, h.Register(c, buf, 1 * SpaprTestHost.MiB));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * SpaprTestHost.KiB));
        int nic = h.Sys.Open("/dev/vfio/2");
        Assert.Equal(0, h.SetContainer(nic, c));
        Assert.True(IommuDma.Translate(h.Host.IommuGroups[SpaprTestHost.GpuGroup], new Iova(0), write: false).Ok);

        Assert.Equal(0, h.Sys.Ioctl(nic, VfioIoctl.GroupUnsetContainer, 0));

        Assert.Equal(0UL, h.ValidTces(SpaprTestHost.GpuGroup));
        Assert.False(h.Pe(SpaprTestHost.NicGroup).Owned);
        Assert.NotNull(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);   // the window itself stays
        Assert.False(IommuDma.Translate(h.Host.IommuGroups[SpaprTestHost.GpuGroup], new Iova(0), write: false).Ok);
        h.AssertClean();
        // The region's mapped count went with the TCEs: unregistering it unpins at once.
        Assert.Equal(0, h.Unregister(c, buf, 1 * SpaprTestHost.MiB));
        Assert.Equal(0UL, h.PinnedFrames);
        h.AssertClean();
    }

    [Fact]
    public void UnsetContainer_V2OneOfTwoGroupsOnLinux61_LeavesTheOtherGroupsTces()
    {
        // Before 4ba2fdff2eb1 (v6.11, not backported to 6.1.y) detach only unset the leaving PE's window: the tables
        // the container shares keep their TCEs, so the remaining group's device still translates.
        var h = new SpaprTestHost(kernel: new KernelSettings(KernelSettings.Linux61, []));
        (int c, _) = h.Container(v2: true);
        ulong buf = h.MmapAnonymous(1 * SpaprTestHost.MiB);
        Assert.Equal(0, h.Register(c, buf, 1 * SpaprTestHost.MiB));
        Assert.Equal(0, h.Map(c, 0, buf, 64 * SpaprTestHost.KiB));
        int nic = h.Sys.Open("/dev/vfio/2");
        Assert.Equal(0, h.SetContainer(nic, c));

        Assert.Equal(0, h.Sys.Ioctl(nic, VfioIoctl.GroupUnsetContainer, 0));

        Assert.Equal(16UL, h.ValidTces(SpaprTestHost.GpuGroup));
        Assert.False(h.Pe(SpaprTestHost.NicGroup).Owned);
        Assert.True(IommuDma.Translate(h.Host.IommuGroups[SpaprTestHost.GpuGroup], new Iova(0), write: false).Ok);
        h.AssertClean();
    }

    [Fact]
    public void GetInfo_ArgszTooSmall_ReturnsEINVALAndWritesNothing()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        byte[] buf = new byte[VfioIommuSpaprTceInfo.SizeOf];
        new VfioIommuSpaprTceInfo { Argsz = 15 }.Write(buf);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Sys.Ioctl(c, VfioIoctl.IommuSpaprTceGetInfo, buf));
        VfioIommuSpaprTceInfo.TryRead(buf, out VfioIommuSpaprTceInfo back);
        Assert.Equal(0u, back.Dma32WindowSize);
    }

    [Fact]
    public void GetInfo_V2ShortArgsz_CopiesOnlyTheFirst16Bytes()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        byte[] buf = new byte[VfioIommuSpaprTceInfo.SizeOf];
        new VfioIommuSpaprTceInfo { Argsz = 16 }.Write(buf);
        Assert.Equal(0, h.Sys.Ioctl(c, VfioIoctl.IommuSpaprTceGetInfo, buf));
        VfioIommuSpaprTceInfo.TryRead(buf, out VfioIommuSpaprTceInfo back);
        Assert.Equal(SpaprInfoFlags.Ddw, back.Flags);
        Assert.Equal((uint)(2 * SpaprTestHost.GiB), back.Dma32WindowSize);
        Assert.Equal(0UL, back.Ddw.Pgsizes);
    }

    [Fact]
    public void GetInfo_V2FullArgsz_ReportsDdw()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        byte[] buf = new byte[VfioIommuSpaprTceInfo.SizeOf];
        new VfioIommuSpaprTceInfo { Argsz = VfioIommuSpaprTceInfo.SizeOf }.Write(buf);
        Assert.Equal(0, h.Sys.Ioctl(c, VfioIoctl.IommuSpaprTceGetInfo, buf));
        VfioIommuSpaprTceInfo.TryRead(buf, out VfioIommuSpaprTceInfo back);
        Assert.Equal(0x1011000UL, back.Ddw.Pgsizes);
        Assert.Equal(2u, back.Ddw.MaxDynamicWindowsSupported);
        Assert.Equal(5u, back.Ddw.Levels);
    }

    [Fact]
    public void GetInfo_V1_HasNoDdwFlag()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        byte[] buf = new byte[VfioIommuSpaprTceInfo.SizeOf];
        new VfioIommuSpaprTceInfo { Argsz = VfioIommuSpaprTceInfo.SizeOf }.Write(buf);
        Assert.Equal(0, h.Sys.Ioctl(c, VfioIoctl.IommuSpaprTceGetInfo, buf));
        VfioIommuSpaprTceInfo.TryRead(buf, out VfioIommuSpaprTceInfo back);
        Assert.Equal(SpaprInfoFlags.None, back.Flags);
        Assert.Equal(0UL, back.Ddw.Pgsizes);
    }

    [Fact]
    public void Ioctl_VersionSpecificRequestOnOtherVersion_ReturnsENOTTY()
    {
        var h = new SpaprTestHost();
        (int v1, _) = h.Container(v2: false);
        Assert.Equal(Errno.ENOTTY.AsReturn(), h.Register(v1, 0x10000, 0x10000));
        Assert.Equal(Errno.ENOTTY.AsReturn(), h.Create(v1, 16, SpaprTestHost.GiB).Ret);
        (int v2, _) = h.Container(v2: true, group: SpaprTestHost.NicGroup);
        Assert.Equal(Errno.ENOTTY.AsReturn(), h.Enable(v2));
        Assert.Equal(Errno.ENOTTY.AsReturn(), h.Disable(v2));
        Assert.Equal(0UL, h.LockedVmPages);
    }
}
