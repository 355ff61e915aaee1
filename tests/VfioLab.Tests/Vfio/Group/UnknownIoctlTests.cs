using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>Unknown requests: ENOTTY on a group fd (group.c) and a vfio-pci or mdev device fd
/// (vfio_pci_core_ioctl's default); EBADF for an fd that is not open.</summary>
public sealed class UnknownIoctlTests
{
    public static TheoryData<uint> Unknown => [0x5401, 0x3B99, VfioIoctl.IommuMapDma, VfioIoctl.SetIommu];

    /// <summary>On a vfio-pci device fd 0x3B71 (the code of MAP_DMA) is VFIO_DEVICE_PCI_HOT_RESET.</summary>
    public static TheoryData<uint> UnknownToVfioPci => [0x5401, 0x3B99, VfioIoctl.SetIommu];

    [Theory]
    [MemberData(nameof(Unknown))]
    public void Ioctl_UnknownOnGroupFd_ReturnsENOTTY(uint request)
    {
        var t = new VfioTestHost();
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl(g, request, new byte[32]));
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl(g, request, 0));
        Assert.Equal(GroupStatusFlags.ContainerSet | GroupStatusFlags.Viable, t.StatusOf(VfioTestHost.GpuGroup));
    }

    [Theory]
    [MemberData(nameof(UnknownToVfioPci))]
    public void Ioctl_UnknownOnPciDeviceFd_ReturnsENOTTY(uint request)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl(d, request, new byte[32]));
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void Ioctl_UnknownOnMdevDeviceFd_ReturnsENOTTY()
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        long d = t.GetDeviceFd(g, VfioTestHost.MdevName);
        Assert.True(d >= 0);
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl((int)d, 0x5401, 0));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(5)]
    [InlineData(1023)]
    [InlineData(4096)]
    public void Ioctl_FdNotOpen_ReturnsEBADF(int fd)
    {
        var t = new VfioTestHost();
        t.OpenContainer();
        t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EBADF, t.Sys.Ioctl(fd, VfioIoctl.GetApiVersion, 0));
        Assert.Equal(-(long)Errno.EBADF, t.Sys.Ioctl(fd, VfioIoctl.GroupGetStatus, new byte[8]));
        Assert.Equal(-(int)Errno.EBADF, t.Sys.Close(fd));
        Assert.Equal(FdTable.StandardStreams + 2, t.FdCount);
    }
}
