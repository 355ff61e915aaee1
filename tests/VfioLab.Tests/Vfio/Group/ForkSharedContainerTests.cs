using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>fork: the child's fd table shares the parent's open container, group and device files
/// (dup_fd); ioctls work from either process, and a close in one does not release what the other
/// still holds.</summary>
public sealed class ForkSharedContainerTests
{
    [Fact]
    public void Fork_ChildIoctlsOnSharedContainer_Work()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g, _) = t.OpenGpu();
        ISyscallSurface child = t.Sys.Fork();

        Assert.Equal(0, child.Ioctl(c, VfioIoctl.GetApiVersion, 0));
        Assert.Equal(1, child.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.Type1v2Iommu));
        byte[] info = new byte[VfioIommuType1Info.SizeOf];
        BinaryPrimitives.WriteUInt32LittleEndian(info, VfioIommuType1Info.SizeOf);
        Assert.Equal(0, child.Ioctl(c, VfioIoctl.IommuGetInfo, info));
        Assert.Equal(FakeIommu.PageSizes, BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(8)));
        Assert.Equal(0, VfioTestHost.GetStatus(child, g, out GroupStatusFlags flags));
        Assert.Equal(GroupStatusFlags.ContainerSet | GroupStatusFlags.Viable, flags);
        Assert.Equal([VfioIoctl.IommuGetInfo], fake.Last.Ioctls);
    }

    [Fact]
    public void Fork_ChildClosesEverything_ParentKeepsContainerGroupAndDevice()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g, int d) = t.OpenGpu();
        ISyscallSurface child = t.Sys.Fork();

        Assert.Equal(0, child.Close(d));
        Assert.Equal(0, child.Close(g));
        Assert.Equal(0, child.Close(c));

        VfioGroup group = t.Group(VfioTestHost.GpuGroup);
        Assert.Same(t.ContainerOf(c), group.Container);
        Assert.Equal(2, group.ContainerUsers);
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
        Assert.Equal(0, fake.Last.ReleaseCount);
        Assert.Equal(1, t.CheckExtension(c, VfioExtension.UpdateVaddr));
        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
    }

    [Fact]
    public void Fork_ChildExits_ParentUnaffected()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _, _) = t.OpenGpu();
        ISyscallSurface child = t.Sys.Fork();
        child.Exit();
        Assert.Same(fake.Last, t.ContainerOf(c).Iommu);
        Assert.Equal(0, fake.Last.ReleaseCount);
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void Fork_ParentClosesGroup_ChildStillHoldsIt()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        ISyscallSurface child = t.Sys.Fork();

        Assert.Equal(0, t.Sys.Close(g));
        Assert.NotNull(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(0, fake.Last.ReleaseCount);
        Assert.True(VfioTestHost.GetDeviceFd(child, g, VfioTestHost.GpuName) >= 0);

        child.Exit();
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(1, fake.Last.ReleaseCount);
        Assert.Equal(0, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void Fork_ChildOpensGroupAgain_ReturnsEBUSY()
    {
        var t = VfioTestHost.WithFake(out _);
        t.OpenGpu();
        ISyscallSurface child = t.Sys.Fork();
        Assert.Equal(-(int)Errno.EBUSY, child.Open($"/dev/vfio/{VfioTestHost.GpuGroup}"));
    }
}
