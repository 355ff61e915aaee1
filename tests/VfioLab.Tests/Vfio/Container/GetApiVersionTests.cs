using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Container;

/// <summary>VFIO_GET_API_VERSION on /dev/vfio/vfio (container.c: always VFIO_API_VERSION).</summary>
public sealed class GetApiVersionTests
{
    [Fact]
    public void GetApiVersion_FreshContainer_ReturnsZero()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.GetApiVersion, 0));
        Assert.Equal(VfioIoctl.ApiVersion, t.Sys.Ioctl(c, VfioIoctl.GetApiVersion, 0));
    }

    [Fact]
    public void GetApiVersion_AfterSetIommu_StillZeroAndBackendNotAsked()
    {
        var t = VfioTestHost.WithFake(out var fake);
        (int c, _, _) = t.OpenGpu();
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.GetApiVersion, 0));
        Assert.Empty(fake.Last.Ioctls);
    }
}
