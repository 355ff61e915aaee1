using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Container;

/// <summary>Container lifetime (container.c vfio_fops_release / vfio_container_put): the container
/// lives while its fd or a group holds it; the backend state lives while a group is attached.</summary>
public sealed class ContainerLifetimeTests
{
    [Fact]
    public void Release_ContainerFdClosedWithoutGroups_ContainerForgotten()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        Assert.Single(t.Host.Vfio.Containers);
        Assert.Equal(0, t.Sys.Close(c));
        Assert.Empty(t.Host.Vfio.Containers);
    }

    [Fact]
    public void Release_ContainerFdClosedWhileGroupAttached_BackendKeptForGroup()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        VfioContainer container = t.ContainerOf(c);
        Assert.Equal(0, t.Sys.Close(c));
        Assert.Same(container, t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(0, fake.Last.ReleaseCount);
        long d = t.GetDeviceFd(g, VfioTestHost.GpuName);
        Assert.True(d >= 0);
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void Release_ContainerFdThenLastGroupClosed_BackendReleasedAndContainerForgotten()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(0, t.Sys.Close(c));
        Assert.Equal(0, t.Sys.Close(g));
        Assert.Equal(1, fake.Last.ReleaseCount);
        Assert.Equal(0, fake.Last.Outstanding);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
        // vfio_group_detach_container drops the group's container reference; with the fd gone too,
        // vfio_container_put frees the container.
        Assert.Empty(t.Host.Vfio.Containers);
    }
}
