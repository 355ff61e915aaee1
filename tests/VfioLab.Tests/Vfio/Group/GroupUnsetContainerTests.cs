using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>VFIO_GROUP_UNSET_CONTAINER (group.c vfio_group_ioctl_unset_container and
/// vfio_group_detach_container): EINVAL without a container, EBUSY with devices open; the last
/// group leaving releases the backend and the container returns to the no-backend state.</summary>
public sealed class GroupUnsetContainerTests
{
    [Fact]
    public void UnsetContainer_NoContainer_ReturnsEINVAL()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EINVAL, t.UnsetContainer(g));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(GroupStatusFlags.Viable, t.StatusOf(VfioTestHost.GpuGroup));
    }

    [Fact]
    public void UnsetContainer_DeviceOpen_ReturnsEBUSY()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g, _) = t.OpenGpu();
        VfioGroup group = t.Group(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EBUSY, t.UnsetContainer(g));
        Assert.Same(t.ContainerOf(c), group.Container);
        Assert.Equal(2, group.ContainerUsers);
        Assert.Equal([group], fake.Last.Attached);
        Assert.Equal(0, fake.Last.DetachCount);
        Assert.Same(group, t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
    }

    [Fact]
    public void UnsetContainer_AfterDeviceClosed_Succeeds()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (_, int g, int d) = t.OpenGpu();
        Assert.Equal(0, t.Sys.Close(d));
        Assert.Equal(1, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(1, fake.Last.ReleaseCount);
    }

    [Fact]
    public void UnsetContainer_LastGroup_ReleasesBackendAndClearsDriver()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        FakeIommu state = fake.Last;

        Assert.Equal(0, t.UnsetContainer(g));

        VfioGroup group = t.Group(VfioTestHost.GpuGroup);
        Assert.Null(group.Container);
        Assert.Equal(0, group.ContainerUsers);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
        Assert.Equal(1, state.DetachCount);
        Assert.Equal(1, state.ReleaseCount);
        Assert.Equal(0, state.AttachedAtRelease);
        Assert.Equal(0, fake.LiveStates);
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Null(t.ContainerOf(c).Driver);
        Assert.Empty(t.ContainerOf(c).Groups);
        Assert.Equal(GroupStatusFlags.Viable, t.StatusOf(VfioTestHost.GpuGroup));
        // Deprivileged: SET_IOMMU needs a group again.
        Assert.Equal(-(long)Errno.EINVAL, t.SetIommu(c, VfioExtension.Type1v2Iommu));
    }

    [Fact]
    public void UnsetContainer_NotLastGroup_BackendKept()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(t.OpenGroup(VfioTestHost.NicGroup), c));
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal([t.Group(VfioTestHost.NicGroup)], fake.Last.Attached);
        Assert.Equal(0, fake.Last.ReleaseCount);
        Assert.Same(fake.Last, t.ContainerOf(c).Iommu);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
    }

    [Fact]
    public void UnsetContainer_Twice_SecondReturnsEINVAL()
    {
        var t = new VfioTestHost();
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(-(long)Errno.EINVAL, t.UnsetContainer(g));
    }

    [Fact]
    public void UnsetContainer_ThenSetAnotherContainer_Succeeds()
    {
        var t = new VfioTestHost();
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        int c2 = t.OpenContainer();
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(0, t.SetContainer(g, c2));
        Assert.Same(t.ContainerOf(c2), t.Group(VfioTestHost.GpuGroup).Container);
    }

    [Fact]
    public void CloseGroupFd_InContainer_DetachesLikeUnset()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(0, t.Sys.Close(g));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Null(t.Group(VfioTestHost.GpuGroup).OpenedFile);
        Assert.Equal(1, fake.Last.ReleaseCount);
        Assert.Null(t.ContainerOf(c).Iommu);
    }
}
