using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>VFIO_GROUP_SET_CONTAINER (group.c vfio_group_ioctl_set_container and container.c
/// vfio_container_attach_group): EFAULT, EBADF, EINVAL, ENODEV, EPERM, EBADFD, the backend's
/// attach error with DMA ownership released.</summary>
public sealed class GroupSetContainerTests
{
    [Fact]
    public void SetContainer_Success_LinksGroupClaimsOwnershipAndCountsOneUser()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(g, c));
        VfioGroup group = t.Group(VfioTestHost.GpuGroup);
        Assert.Same(t.ContainerOf(c), group.Container);
        Assert.Equal(1, group.ContainerUsers);
        Assert.Equal([group], t.ContainerOf(c).Groups);
        Assert.Same(group, t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
    }

    [Fact]
    public void SetContainer_FdNotOpen_ReturnsEBADF()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EBADF, t.SetContainer(g, 77));
        Assert.Equal(-(long)Errno.EBADF, t.SetContainer(g, -1));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Equal(GroupStatusFlags.Viable, t.StatusOf(VfioTestHost.GpuGroup));
    }

    [Fact]
    public void SetContainer_FdIsAnotherGroup_ReturnsEBADFD()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        int other = t.OpenGroup(VfioTestHost.NicGroup);
        Assert.Equal(-(long)Errno.EBADFD, t.SetContainer(g, other));
        Assert.Equal(-(long)Errno.EBADFD, t.SetContainer(g, g));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Null(t.IommuGroup(VfioTestHost.GpuGroup).DmaOwner);
    }

    [Fact]
    public void SetContainer_FdIsDeviceFd_ReturnsEBADFD()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        int nic = t.OpenGroup(VfioTestHost.NicGroup);
        Assert.Equal(-(long)Errno.EBADFD, t.SetContainer(nic, d));
        Assert.Null(t.Group(VfioTestHost.NicGroup).Container);
    }

    [Fact]
    public void SetContainer_AlreadySet_ReturnsEINVAL()
    {
        var t = new VfioTestHost();
        (int c, int g) = t.Attach(VfioTestHost.GpuGroup);
        int c2 = t.OpenContainer();
        Assert.Equal(-(long)Errno.EINVAL, t.SetContainer(g, c));
        Assert.Equal(-(long)Errno.EINVAL, t.SetContainer(g, c2));
        Assert.Same(t.ContainerOf(c), t.Group(VfioTestHost.GpuGroup).Container);
        Assert.Empty(t.ContainerOf(c2).Groups);
        Assert.Equal(1, t.Group(VfioTestHost.GpuGroup).ContainerUsers);
    }

    [Fact]
    public void SetContainer_AlreadySetAndFdBad_ReturnsEBADFFirst()
    {
        var t = new VfioTestHost();
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EBADF, t.SetContainer(g, 77));
    }

    [Fact]
    public void SetContainer_GroupNotViable_ReturnsEPERMAndChangesNothing()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.NonViableGroup);
        Assert.Equal(-(long)Errno.EPERM, t.SetContainer(g, c));
        Assert.Null(t.Group(VfioTestHost.NonViableGroup).Container);
        Assert.Equal(0, t.Group(VfioTestHost.NonViableGroup).ContainerUsers);
        Assert.Empty(t.ContainerOf(c).Groups);
        Assert.Null(t.IommuGroup(VfioTestHost.NonViableGroup).DmaOwner);
        Assert.Equal(GroupStatusFlags.None, t.StatusOf(VfioTestHost.NonViableGroup));
    }

    [Fact]
    public void SetContainer_PointerIntoUnmappedMemory_ReturnsEFAULT()
    {
        var t = new VfioTestHost();
        t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupSetContainer, 0x10UL));
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupSetContainer, new byte[3]));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
    }

    [Fact]
    public void SetContainer_PointerIntoProcessMemory_ReadsFdThere()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        ulong a = t.MapAnonymous(0x1000);
        byte[] fd = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(fd, c);
        Assert.Equal(0, t.Sys.WriteMemory(a + 0xffc, fd));
        Assert.Equal(0, t.Sys.Ioctl(g, VfioIoctl.GroupSetContainer, a + 0xffc));
        Assert.Same(t.ContainerOf(c), t.Group(VfioTestHost.GpuGroup).Container);
    }

    [Fact]
    public void SetContainer_IntStraddlesEndOfMapping_ReturnsEFAULT()
    {
        var t = new VfioTestHost();
        t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        ulong a = t.MapAnonymous(0x1000);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupSetContainer, a + 0xffe));
        Assert.Null(t.Group(VfioTestHost.GpuGroup).Container);
    }

    [Fact]
    public void SetContainer_IommuGroupGone_ReturnsENODEV()
    {
        var t = new VfioTestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.True(t.IommuGroup(VfioTestHost.GpuGroup).RemoveMember(t.Host.Devices["gpu"].Member));
        Assert.Equal(-(long)Errno.ENODEV, t.SetContainer(g, c));
        Assert.Empty(t.ContainerOf(c).Groups);
    }

    [Fact]
    public void SetContainer_BackendSet_AttachesGroupToBackend()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int nic = t.OpenGroup(VfioTestHost.NicGroup);
        Assert.Equal(0, t.SetContainer(nic, c));
        Assert.Equal([t.Group(VfioTestHost.GpuGroup), t.Group(VfioTestHost.NicGroup)], fake.Last.Attached);
        Assert.True(t.GetDeviceFd(nic, VfioTestHost.NicName) >= 0);
    }

    [Theory]
    [InlineData(VfioTestHost.NicGroup, Errno.ENOMEM)]
    [InlineData(VfioTestHost.NicGroup, Errno.EINVAL)]
    [InlineData(VfioTestHost.MdevGroup, Errno.EPERM)]
    public void SetContainer_BackendAttachFails_ReturnsErrnoAndReleasesDmaOwnership(int number, Errno errno)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, _) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int g = t.OpenGroup(number);
        fake.FailAttach(1, errno);

        Assert.Equal(-(long)errno, t.SetContainer(g, c));

        Assert.Null(t.Group(number).Container);
        Assert.Equal(0, t.Group(number).ContainerUsers);
        Assert.Null(t.IommuGroup(number).DmaOwner);
        Assert.Equal(GroupStatusFlags.Viable, t.StatusOf(number));
        Assert.Equal([t.Group(VfioTestHost.GpuGroup)], t.ContainerOf(c).Groups);
        Assert.Equal([t.Group(VfioTestHost.GpuGroup)], fake.Last.Attached);
        Assert.Equal(0, fake.Last.ReleaseCount);
        // Ownership really went back: the next attempt claims it again.
        Assert.Equal(0, t.SetContainer(g, c));
        Assert.Equal(2, fake.Last.Attached.Count);
    }
}
