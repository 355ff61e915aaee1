using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>VFIO_GROUP_GET_STATUS (group.c vfio_group_ioctl_get_status): copy minsz (8) in, argsz &lt;
/// 8 is EINVAL, flags VIABLE / CONTAINER_SET|VIABLE / 0, only minsz copied back.</summary>
public sealed class GroupGetStatusTests
{
    [Theory]
    [InlineData(0u)]
    [InlineData(4u)]
    [InlineData(7u)]
    public void GetStatus_ArgszBelowMinsz_ReturnsEINVAL(uint argsz)
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        byte[] arg = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, argsz);
        BinaryPrimitives.WriteUInt32LittleEndian(arg.AsSpan(4), 0xdead);
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, arg));
        Assert.Equal(0xdeadu, BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(4)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(7)]
    public void GetStatus_BufferShorterThanMinsz_ReturnsEFAULT(int length)
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        byte[] arg = new byte[length];
        if (length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(arg, 8);
        }
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, arg));
    }

    [Fact]
    public void GetStatus_PointerIntoUnmappedMemory_ReturnsEFAULT()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, 0x10UL));
    }

    [Fact]
    public void GetStatus_PointerIntoProcessMemory_WritesFlagsThere()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        ulong a = t.MapAnonymous(0x1000);
        byte[] arg = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 8);
        Assert.Equal(0, t.Sys.WriteMemory(a, arg));
        Assert.Equal(0, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, a));
        Assert.Equal(0, t.Sys.ReadMemory(a, arg));
        Assert.Equal((uint)GroupStatusFlags.Viable, BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(4)));
    }

    [Fact]
    public void GetStatus_ViableGroupNotInContainer_ReturnsViable()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.GetStatus(g, out GroupStatusFlags flags));
        Assert.Equal(GroupStatusFlags.Viable, flags);
    }

    [Fact]
    public void GetStatus_GroupInContainer_ReturnsContainerSetAndViable()
    {
        var t = new VfioTestHost();
        (_, int g) = t.Attach(VfioTestHost.GpuGroup);
        Assert.Equal(0, t.GetStatus(g, out GroupStatusFlags flags));
        Assert.Equal(GroupStatusFlags.ContainerSet | GroupStatusFlags.Viable, flags);
    }

    [Fact]
    public void GetStatus_MemberBoundToHostDriver_ReturnsNoFlags()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.NonViableGroup);
        Assert.Equal(0, t.GetStatus(g, out GroupStatusFlags flags));
        Assert.Equal(GroupStatusFlags.None, flags);
    }

    [Fact]
    public void GetStatus_MdevGroup_ReturnsViable()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.GetStatus(g, out GroupStatusFlags flags));
        Assert.Equal(GroupStatusFlags.Viable, flags);
    }

    [Fact]
    public void GetStatus_LargerArgsz_CopiesBackOnlyMinsz()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        byte[] arg = new byte[16];
        arg.AsSpan(8).Fill(0xaa);
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 16);
        Assert.Equal(0, t.Sys.Ioctl(g, VfioIoctl.GroupGetStatus, arg));
        Assert.Equal(16u, BinaryPrimitives.ReadUInt32LittleEndian(arg));
        Assert.Equal((uint)GroupStatusFlags.Viable, BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(4)));
        Assert.All(arg[8..], b => Assert.Equal(0xaa, b));
    }

    [Fact]
    public void GetStatus_IommuGroupGone_ReturnsENODEV()
    {
        var t = new VfioTestHost();
        int g = t.OpenGroup(VfioTestHost.GpuGroup);
        Assert.True(t.IommuGroup(VfioTestHost.GpuGroup).RemoveMember(t.Host.Devices["gpu"].Member));
        Assert.Equal(-(long)Errno.ENODEV, t.GetStatus(g, out _));
    }
}
