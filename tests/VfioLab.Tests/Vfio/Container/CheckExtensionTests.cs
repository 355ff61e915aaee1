using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;

namespace VfioLab.Tests.Vfio.Container;

/// <summary>VFIO_CHECK_EXTENSION (container.c vfio_ioctl_check_extension): with no backend chosen
/// every allowed backend is polled with no state and the first positive answer wins; once chosen,
/// only that backend answers, with its state.</summary>
public sealed class CheckExtensionTests
{
    [Theory]
    [InlineData(VfioExtension.Type1Iommu)]
    [InlineData(VfioExtension.Type1v2Iommu)]
    [InlineData(VfioExtension.SpaprTceIommu)]
    [InlineData(VfioExtension.NoiommuIommu)]
    [InlineData(0u)]
    public void CheckExtension_NoBackendRegistered_ReturnsZero(uint extension)
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        Assert.Equal(0, t.CheckExtension(c, extension));
        Assert.Null(t.ContainerOf(c).Iommu);
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, 1)]
    [InlineData(VfioExtension.Type1v2Iommu, 1)]
    [InlineData(VfioExtension.UnmapAll, 1)]
    [InlineData(VfioExtension.UpdateVaddr, 0)]
    [InlineData(VfioExtension.DmaCcIommu, 0)]
    [InlineData(VfioExtension.SpaprTceIommu, 0)]
    [InlineData(VfioExtension.NoiommuIommu, 0)]
    public void CheckExtension_FakeBeforeSetIommu_ReturnsStatelessAnswer(uint extension, long expected)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        int c = t.OpenContainer();
        Assert.Equal(expected, t.CheckExtension(c, extension));
        Assert.Equal(fake.CheckExtension(extension), t.CheckExtension(c, extension));
        Assert.Empty(fake.States);
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, 1)]
    [InlineData(VfioExtension.Type1v2Iommu, 1)]
    [InlineData(VfioExtension.UnmapAll, 1)]
    [InlineData(VfioExtension.UpdateVaddr, 1)]
    [InlineData(VfioExtension.DmaCcIommu, 1)]
    [InlineData(VfioExtension.SpaprTceIommu, 0)]
    public void CheckExtension_AfterSetIommu_ReturnsBackendStateAnswer(uint extension, long expected)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(expected, t.CheckExtension(c, extension));
        Assert.Same(fake.Last, t.ContainerOf(c).Iommu);
    }

    [Fact]
    public void CheckExtension_EmulatedGroupAttached_UpdateVaddrFollowsBackendState()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.UpdateVaddr));
        int mdev = t.OpenGroup(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetContainer(mdev, c));
        Assert.Equal(0, t.CheckExtension(c, VfioExtension.UpdateVaddr));
        Assert.True(fake.Last.HasEmulatedGroup);
    }

    [Fact]
    public void CheckExtension_LastGroupLeft_PollsBackendsAgainWithoutState()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.UpdateVaddr));
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(0, t.CheckExtension(c, VfioExtension.UpdateVaddr));
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.Type1v2Iommu));
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Equal(1, fake.Last.ReleaseCount);
    }

    [Fact]
    public void CheckExtension_TwoBackends_FirstPositiveAnswerWins()
    {
        var type1 = new FakeIommuDriver();
        var spapr = new FakeIommuDriver("fake-spapr", false, VfioExtension.SpaprTceIommu, VfioExtension.SpaprTceV2Iommu);
        var t = new VfioTestHost(type1, spapr);
        int c = t.OpenContainer();
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.SpaprTceV2Iommu));
        Assert.Equal(0, t.CheckExtension(c, VfioExtension.Eeh));
    }

    [Fact]
    public void CheckExtension_NoIommuBackendWithRealGroupAttached_NotPolled()
    {
        var noiommu = new FakeIommuDriver("fake-noiommu", true, VfioExtension.NoiommuIommu);
        var t = new VfioTestHost(new FakeIommuDriver(), noiommu);
        int c = t.OpenContainer();
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.NoiommuIommu));
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(g, c));
        Assert.Equal(0, t.CheckExtension(c, VfioExtension.NoiommuIommu));
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.Type1Iommu));
    }
}
