using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Container;

/// <summary>VFIO_SET_IOMMU (container.c vfio_ioctl_set_iommu): EINVAL without a group or with a
/// backend set; each allowed backend that claims the type is opened and every group attached, with
/// full unwind on failure; the last error, or ENODEV when nobody claims the type.</summary>
public sealed class SetIommuTests
{
    [Fact]
    public void SetIommu_NoGroup_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        int c = t.OpenContainer();
        Assert.Equal(-(long)Errno.EINVAL, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Null(t.ContainerOf(c).Driver);
        Assert.Equal(0, fake.OpenCalls);
    }

    [Fact]
    public void SetIommu_AlreadySet_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        FakeIommu first = fake.Last;
        Assert.Equal(-(long)Errno.EINVAL, t.SetIommu(c, VfioExtension.Type1Iommu));
        Assert.Equal(1, fake.OpenCalls);
        Assert.Same(first, t.ContainerOf(c).Iommu);
        Assert.Equal(VfioExtension.Type1v2Iommu, first.Type);
        Assert.Equal(0, first.ReleaseCount);
    }

    [Fact]
    public void SetIommu_Success_AttachesEveryGroupAndRecordsBackend()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        int nic = t.OpenGroup(VfioTestHost.NicGroup);
        Assert.Equal(0, t.SetContainer(nic, c));
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1Iommu));
        VfioContainer container = t.ContainerOf(c);
        Assert.Same(fake, container.Driver);
        Assert.Same(fake.Last, container.Iommu);
        Assert.Equal([t.Group(VfioTestHost.GpuGroup), t.Group(VfioTestHost.NicGroup)], fake.Last.Attached);
        Assert.Equal(VfioExtension.Type1Iommu, fake.Last.Type);
    }

    [Theory]
    [InlineData(VfioExtension.SpaprTceIommu)]
    [InlineData(VfioExtension.NoiommuIommu)]
    [InlineData(VfioExtension.Eeh)]
    [InlineData(0x1_0000_0001UL)]
    public void SetIommu_NoBackendClaimsType_ReturnsENODEV(ulong type)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENODEV, t.Sys.Ioctl(c, VfioIoctl.SetIommu, type));
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Equal(VfioTestHost.GpuGroup, Assert.Single(t.ContainerOf(c).Groups).Number);
    }

    [Fact]
    public void SetIommu_ExtensionThatIsNotAType_BackendOpenReturnsEINVAL()
    {
        // type1 answers CHECK_EXTENSION(VFIO_UNMAP_ALL) with 1, so SET_IOMMU reaches its open,
        // which accepts only TYPE1/TYPE1v2 and returns -EINVAL; that is the last error seen.
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EINVAL, t.SetIommu(c, VfioExtension.UnmapAll));
        Assert.Equal(1, fake.OpenCalls);
        Assert.Empty(fake.States);
        Assert.Null(t.ContainerOf(c).Iommu);
    }

    [Fact]
    public void SetIommu_NoBackendRegistered_ReturnsENODEV()
    {
        var t = new VfioTestHost();
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENODEV, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Null(t.ContainerOf(c).Iommu);
    }

    [Fact]
    public void SetIommu_OnlyNoIommuBackendClaimsTypeForRealGroups_ReturnsENODEV()
    {
        var noiommu = new FakeIommuDriver("fake-noiommu", true, VfioExtension.NoiommuIommu);
        var t = new VfioTestHost(noiommu);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENODEV, t.SetIommu(c, VfioExtension.NoiommuIommu));
        Assert.Equal(0, noiommu.OpenCalls);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void SetIommu_NthGroupAttachFails_ReturnsErrnoAndUnwindsEverything(int nth)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(t.OpenGroup(VfioTestHost.NicGroup), c));
        Assert.Equal(0, t.SetContainer(t.OpenGroup(VfioTestHost.MdevGroup), c));
        fake.FailAttach(nth, Errno.ENOMEM);

        Assert.Equal(-(long)Errno.ENOMEM, t.SetIommu(c, VfioExtension.Type1v2Iommu));

        FakeIommu state = Assert.Single(fake.States);
        Assert.Empty(state.Attached);
        Assert.Equal(nth - 1, state.DetachCount);
        Assert.Equal(1, state.ReleaseCount);
        Assert.Equal(0, state.AttachedAtRelease);
        VfioContainer container = t.ContainerOf(c);
        Assert.Null(container.Iommu);
        Assert.Null(container.Driver);
        Assert.Equal(3, container.Groups.Count);
        Assert.Equal(GroupStatusFlags.ContainerSet | GroupStatusFlags.Viable, t.StatusOf(VfioTestHost.GpuGroup));
        Assert.NotNull(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);

        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(3, fake.Last.Attached.Count);
        Assert.Equal(1, fake.LiveStates);
    }

    [Fact]
    public void SetIommu_OpenFails_ReturnsOpenErrno()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        fake.OpenError = Errno.ENOMEM;
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENOMEM, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(1, fake.OpenCalls);
        Assert.Equal(0, fake.AttachCalls);
        Assert.Null(t.ContainerOf(c).Iommu);
    }

    [Fact]
    public void SetIommu_FirstBackendAttachFails_NextBackendChosen()
    {
        var first = new FakeIommuDriver("fake-a");
        var second = new FakeIommuDriver("fake-b");
        var t = new VfioTestHost(first, second);
        first.FailAttach(1, Errno.EPERM);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Same(second, t.ContainerOf(c).Driver);
        Assert.Equal(1, first.Last.ReleaseCount);
        Assert.Empty(first.Last.Attached);
        Assert.Equal([t.Group(VfioTestHost.GpuGroup)], second.Last.Attached);
    }

    [Fact]
    public void SetIommu_EveryBackendFails_ReturnsLastError()
    {
        var first = new FakeIommuDriver("fake-a") { OpenError = Errno.ENOMEM };
        var second = new FakeIommuDriver("fake-b");
        var t = new VfioTestHost(first, second);
        second.FailAttach(1, Errno.EPERM);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EPERM, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Equal(0, first.LiveStates + second.LiveStates);
    }
}
