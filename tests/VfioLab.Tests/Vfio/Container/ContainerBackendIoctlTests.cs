using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;

namespace VfioLab.Tests.Vfio.Container;

/// <summary>Container ioctls the core does not handle (container.c vfio_fops_unl_ioctl default):
/// EINVAL before SET_IOMMU, else passed to the backend, which answers ENOTTY for unknown ones.</summary>
public sealed class ContainerBackendIoctlTests
{
    public static TheoryData<uint> BackendRequests => [VfioIoctl.IommuGetInfo, VfioIoctl.IommuMapDma, VfioIoctl.IommuUnmapDma, VfioIoctl.IommuEnable, 0x3B99, 0x5401];

    [Theory]
    [MemberData(nameof(BackendRequests))]
    public void BackendIoctl_NoGroupNoBackend_ReturnsEINVAL(uint request)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        int c = t.OpenContainer();
        byte[] arg = new byte[64];
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(c, request, arg));
        Assert.Equal(new byte[64], arg);
        Assert.Empty(fake.States);
    }

    [Theory]
    [MemberData(nameof(BackendRequests))]
    public void BackendIoctl_GroupButNoSetIommu_ReturnsEINVAL(uint request)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(c, request, 0));
        Assert.Empty(fake.States);
    }

    [Fact]
    public void BackendIoctl_UnknownAfterSetIommu_ReturnsENOTTYFromBackend()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl(c, 0x3B99, 0));
        Assert.Equal(-(long)Errno.ENOTTY, t.Sys.Ioctl(c, VfioIoctl.IommuEnable, 0));
        Assert.Equal([0x3B99u, VfioIoctl.IommuEnable], fake.Last.Ioctls);
    }

    [Fact]
    public void BackendIoctl_GetInfoAfterSetIommu_ReturnsBackendAnswerAndOutput()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        byte[] info = new byte[VfioIommuType1Info.SizeOf];
        BinaryPrimitives.WriteUInt32LittleEndian(info, VfioIommuType1Info.SizeOf);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, info));
        Assert.True(VfioIommuType1Info.TryRead(info, out VfioIommuType1Info parsed));
        Assert.Equal(IommuInfoFlags.Pgsizes, parsed.Flags);
        Assert.Equal(FakeIommu.PageSizes, parsed.IovaPgsizes);
        Assert.Equal([VfioIoctl.IommuGetInfo], fake.Last.Ioctls);
    }

    [Fact]
    public void BackendIoctl_AfterLastGroupLeft_ReturnsEINVALAgain()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(c, 0x3B99, 0));
        Assert.Empty(fake.Last.Ioctls);
    }
}
