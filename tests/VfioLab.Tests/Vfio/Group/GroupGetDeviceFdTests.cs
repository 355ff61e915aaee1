using System.Text;
using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>VFIO_GROUP_GET_DEVICE_FD (group.c vfio_group_ioctl_get_device_fd, vfio_df_group_open):
/// strndup_user (EFAULT/EINVAL), ENODEV for an unknown name, EINVAL without a container or backend;
/// success is a new fd, the device opened once and the container used once.</summary>
public sealed class GroupGetDeviceFdTests
{
    [Fact]
    public void GetDeviceFd_NoContainer_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out _);
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        int fds = t.FdCount;
        Assert.Equal(-(long)Errno.EINVAL, t.GetDeviceFd(g, VfioTestHost.GpuName));
        Assert.Equal(fds, t.FdCount);
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
        Assert.Equal(0, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
    }

    [Fact]
    public void GetDeviceFd_ContainerWithoutBackend_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        int fds = t.FdCount;
        Assert.Equal(-(long)Errno.EINVAL, t.GetDeviceFd(g, VfioTestHost.GpuName));
        Assert.Equal(fds, t.FdCount);
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
        Assert.Equal(1, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
        Assert.Equal(1, t.FileOf(g)!.RefCount);
        Assert.Empty(fake.States);
    }

    [Theory]
    [InlineData(VfioTestHost.NicName)]
    [InlineData("0000:01:00.1")]
    [InlineData("")]
    [InlineData("0000:01:00.0 ")]
    public void GetDeviceFd_UnknownName_ReturnsENODEV(string name)
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int fds = t.FdCount;
        Assert.Equal(-(long)Errno.ENODEV, t.GetDeviceFd(g, name));
        Assert.Equal(fds, t.FdCount);
        Assert.Equal(1, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
    }

    [Fact]
    public void GetDeviceFd_UnknownNameWithoutContainer_ReturnsENODEVBeforeEINVAL()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENODEV, t.GetDeviceFd(g, VfioTestHost.NicName));
    }

    [Fact]
    public void GetDeviceFd_NameWithoutNulInBuffer_ReturnsEFAULT()
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        byte[] name = Encoding.ASCII.GetBytes(VfioTestHost.GpuName);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, name));
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, 0x10UL));
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void GetDeviceFd_NoNulWithinPageSize_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        byte[] name = new byte[4097];
        name.AsSpan(0, 4096).Fill((byte)'a');
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, name));
        name[4095] = 0;
        Assert.Equal(-(long)Errno.ENODEV, t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, name));
    }

    [Fact]
    public void GetDeviceFd_NameInProcessMemory_ReadThroughPointer()
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        ulong a = t.MapAnonymous(0x1000);
        Assert.Equal(0, t.Sys.WriteMemory(a, [.. Encoding.ASCII.GetBytes(VfioTestHost.GpuName), 0]));
        Assert.True(t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, a) >= 0);
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void GetDeviceFd_Success_ReturnsNewDeviceFdAndUsesContainer()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int fds = t.FdCount;

        long d = t.GetDeviceFd(g, VfioTestHost.GpuName);

        Assert.True(d >= 0);
        Assert.NotEqual(c, d);
        Assert.NotEqual(g, d);
        Assert.Equal(fds + 1, t.FdCount);
        VfioDevice device = t.Device(VfioTestHost.GpuName);
        Assert.Same(device, t.FileOperations<VfioDeviceFile>((int)d).Device);
        Assert.Equal(1, device.OpenCount);
        Assert.Equal(2, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
        Assert.Equal(2, t.FileOf(g)!.RefCount);
        Assert.Empty(fake.Last.Registered);
    }

    [Fact]
    public void GetDeviceFd_SecondFdForSameDevice_OpenCountTwoContainerUsedOnce()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, int g, int d1) = t.OpenGpu();
        long d2 = t.GetDeviceFd(g, VfioTestHost.GpuName);
        Assert.True(d2 >= 0);
        Assert.NotEqual(d1, d2);
        VfioDevice device = t.Device(VfioTestHost.GpuName);
        Assert.Equal(2, device.OpenCount);
        Assert.Equal(2, t.Group(VfioTestHost.GpuGroup).ContainerUsers);

        Assert.Equal(0, t.Sys.Close(d1));
        Assert.Equal(1, device.OpenCount);
        Assert.Equal(2, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
        Assert.Equal(0, t.Sys.Close((int)d2));
        Assert.Equal(0, device.OpenCount);
        Assert.Equal(1, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
        Assert.Equal(1, t.FileOf(g)!.RefCount);
    }

    [Fact]
    public void GetDeviceFd_NonViableGroupsVfioDevice_NeverReachable()
    {
        var t = VfioTestHost.WithFake(out _);
        int c = t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.NonViableGroup);
        Assert.Equal(-(long)Errno.EPERM, t.SetContainer(g, c));
        Assert.Equal(-(long)Errno.EINVAL, t.GetDeviceFd(g, VfioTestHost.NonViableVfioName));
        Assert.Equal(-(long)Errno.ENODEV, t.GetDeviceFd(g, VfioTestHost.HostOwnedName));
        Assert.Equal(0, t.Device(VfioTestHost.NonViableVfioName).OpenCount);
    }
}
