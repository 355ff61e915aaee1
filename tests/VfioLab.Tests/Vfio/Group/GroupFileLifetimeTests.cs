using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>Device fds hold a reference on the group file (group.c vfio_group_use_container's
/// get_file), so the group's release, and with it the container detach, runs only after the last
/// device fd closes.</summary>
public sealed class GroupFileLifetimeTests
{
    [Fact]
    public void CloseGroupFd_DeviceFdOpen_GroupStaysOpenAndInContainer()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g, int d) = t.OpenGpu();
        VfioGroup group = t.Group(VfioTestHost.GpuGroup);

        Assert.Equal(0, t.Sys.Close(g));

        Assert.NotNull(group.OpenedFile);
        Assert.Same(t.ContainerOf(c), group.Container);
        Assert.Equal(2, group.ContainerUsers);
        Assert.Equal([group], fake.Last.Attached);
        Assert.Equal(0, fake.Last.ReleaseCount);
        Assert.Equal(-(int)Errno.EBUSY, t.Sys.Open($"/dev/vfio/{VfioTestHost.GpuGroup}"));
        Assert.Equal(-(long)Errno.EBADF, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, new byte[8]));
        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
    }

    [Fact]
    public void CloseDeviceFd_AfterGroupFdClosed_GroupReleasedAndBackendReleased()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g, int d) = t.OpenGpu();
        VfioGroup group = t.Group(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.Sys.Close(g));

        Assert.Equal(0, t.Sys.Close(d));

        Assert.Null(group.OpenedFile);
        Assert.Null(group.Container);
        Assert.Equal(0, group.ContainerUsers);
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
        Assert.Equal(1, fake.Last.ReleaseCount);
        Assert.Equal(0, fake.Last.Outstanding);
        Assert.Null(t.ContainerOf(c).Iommu);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
        Assert.True(t.Sys.Open($"/dev/vfio/{VfioTestHost.GpuGroup}") >= 0);
    }

    [Fact]
    public void Exit_WithContainerGroupAndDevice_EverythingReleased()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        t.OpenGpu();
        t.Process.Exit();
        Assert.Null(t.Group(VfioTestHost.GpuGroup).OpenedFile);
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
        Assert.Equal(1, fake.Last.ReleaseCount);
        Assert.Equal(0, fake.LiveStates);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
    }
}
