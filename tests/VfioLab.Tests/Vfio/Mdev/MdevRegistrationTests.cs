using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Mdev;

/// <summary>Devices that pin pages through the backend (an mdev's vendor driver, ops->dma_unmap) are
/// registered with the backend while open (vfio_device_container_register / unregister); vfio-pci
/// devices are not.</summary>
public sealed class MdevRegistrationTests
{
    [Fact]
    public void GetDeviceFd_MdevDevice_RegistersWithBackend()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        long d = t.GetDeviceFd(g, VfioTestHost.MdevName);
        Assert.True(d >= 0);
        VfioDevice mdev = t.Device(VfioTestHost.MdevName);
        Assert.Equal([mdev], fake.Last.Registered);
        Assert.Equal(1, mdev.OpenCount);
        Assert.Equal(2, t.Group(VfioTestHost.MdevGroup).ContainerUsers);
        Assert.Null(t.IommuGroup(VfioTestHost.MdevGroup).DmaOwner);
    }

    [Fact]
    public void CloseDeviceFd_MdevDevice_UnregistersFromBackend()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int d1 = (int)t.GetDeviceFd(g, VfioTestHost.MdevName);
        int d2 = (int)t.GetDeviceFd(g, VfioTestHost.MdevName);
        Assert.Equal(1, fake.Last.RegisterCount);
        Assert.Equal(0, t.Sys.Close(d1));
        Assert.Single(fake.Last.Registered);
        Assert.Equal(0, t.Sys.Close(d2));
        Assert.Empty(fake.Last.Registered);
        Assert.Equal(1, fake.Last.UnregisterCount);
        Assert.Equal(0, t.UnsetContainer(g));
        Assert.Equal(0, fake.Last.Outstanding);
        Assert.Equal(1, fake.Last.ReleaseCount);
    }

    [Fact]
    public void GetDeviceFd_PciDevice_NotRegistered()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        t.OpenGpu();
        Assert.Equal(0, fake.Last.RegisterCount);
    }

    [Fact]
    public void SetContainer_MdevAndPciGroupsInOneContainer_BothAttached()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(t.OpenGroup(VfioTestHost.MdevGroup), c));
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.Equal([t.Group(VfioTestHost.GpuGroup), t.Group(VfioTestHost.MdevGroup)], fake.Last.Attached);
    }
}
