using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// The switches that separate the LTS profiles <c>linux-6.12</c> and <c>linux-6.1</c> from <c>linux-6.18</c>
/// (docs/architecture.md "Kernel profiles"), one observable difference each.
/// </summary>
public sealed class LtsProfileTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const byte Fill = 0xAA;

    // 35890f85573c (v6.13) stopped advertising VFIO_TYPE1_NESTING_IOMMU.
    [Theory]
    [InlineData(KernelSettings.Linux61, 1)]
    [InlineData(KernelSettings.Linux612, 1)]
    [InlineData(KernelSettings.Linux618, 0)]
    public void CheckExtension_NestingIommuByProfile_OneBeforeV613(string profile, long expected)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        int empty = t.OpenContainer();
        (int c, _) = t.Container();

        Assert.Equal(expected, t.Sys.Ioctl(empty, VfioIoctl.CheckExtension, VfioExtension.Type1NestingIommu));
        Assert.Equal(expected, t.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.Type1NestingIommu));
    }

    [Fact]
    public void SetIommu_NestingTypeOnLinux612VtD_ReturnsEINVAL()
    {
        var t = new Type1TestHost(kernel: new KernelSettings(KernelSettings.Linux612, []));
        int c = t.OpenContainer();
        int g = t.OpenGroup(Type1TestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(g, c));

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetIommu(c, VfioExtension.Type1NestingIommu));
    }

    // a881b496941f (v6.6) pads every capability to 8 bytes: on the real kernels 116 bytes (6.1) and 120 (6.12).
    [Theory]
    [InlineData(KernelSettings.Linux61, 116u, 68u)]
    [InlineData(KernelSettings.Linux612, 120u, 72u)]
    [InlineData(KernelSettings.Linux618, 120u, 72u)]
    public void GetInfo_FullChainByProfile_DmaAvailPaddedSinceV66(string profile, uint size, uint iovaRangeOffset)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, 16);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));
        Assert.Equal(size, BinaryPrimitives.ReadUInt32LittleEndian(buf));

        BinaryPrimitives.WriteUInt32LittleEndian(buf, size);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(24u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        // MIGRATION (32 bytes) at 24, DMA_AVAIL at 56, whose next is IOVA_RANGE.
        Assert.Equal((ushort)IommuType1InfoCapId.DmaAvail, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(56)));
        Assert.Equal(iovaRangeOffset, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(60)));
        Assert.Equal((ushort)IommuType1InfoCapId.IovaRange, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan((int)iovaRangeOffset)));
        Assert.All(buf[(int)size..], b => Assert.Equal(Fill, b));
    }

    // Before a881b496941f the struct went back as offsetofend(iova_pgsizes) or offsetofend(cap_offset).
    [Theory]
    [InlineData(KernelSettings.Linux61, 18u, 16)]
    [InlineData(KernelSettings.Linux61, 24u, 20)]
    [InlineData(KernelSettings.Linux618, 18u, 18)]
    [InlineData(KernelSettings.Linux618, 24u, 24)]
    public void GetInfo_ArgszWithoutRoomForChain_CopiesBackPreV66SizeOnLinux61(string profile, uint argsz, int written)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, argsz);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.All(buf[16..written], b => Assert.Equal(0, b));
        Assert.All(buf[written..], b => Assert.Equal(Fill, b));
    }

    // 6012379ede6a and ef270ec44637 (v6.18-rc4) answer a wrapping range with EOVERFLOW; before, EINVAL.
    [Theory]
    [InlineData(KernelSettings.Linux61, Errno.EINVAL)]
    [InlineData(KernelSettings.Linux612, Errno.EINVAL)]
    [InlineData(KernelSettings.Linux618, Errno.EOVERFLOW)]
    public void MapDma_IovaRangeWrapsByProfile_EinvalBeforeV618(string profile, Errno expected)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(expected.AsReturn(), t.Map(c, ulong.MaxValue - (4 * KiB) + 1, buf, 8 * KiB));
    }

    // The same commit added vfio_device_info's pad: vfio-pci copied back 16 bytes, or 20 once argsz covered cap_offset.
    [Theory]
    [InlineData(KernelSettings.Linux61, 18u, 16)]
    [InlineData(KernelSettings.Linux61, 24u, 20)]
    [InlineData(KernelSettings.Linux612, 18u, 18)]
    [InlineData(KernelSettings.Linux612, 24u, 24)]
    public void DeviceGetInfo_ArgszByProfile_CopiesBackPreV66SizeOnLinux61(string profile, uint argsz, int written)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (_, int g) = t.Container();
        int d = (int)t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, System.Text.Encoding.ASCII.GetBytes(Type1TestHost.GpuName + "\0"));
        Assert.True(d >= 0);
        byte[] buf = Filled(32);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, argsz);

        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, buf));

        Assert.Equal((uint)DeviceInfoFlags.Pci, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(4)) & (uint)DeviceInfoFlags.Pci);
        Assert.All(buf[16..written], b => Assert.Equal(0, b));
        Assert.All(buf[written..], b => Assert.Equal(Fill, b));
    }

    private static byte[] Filled(int length)
    {
        var buf = new byte[length];
        Array.Fill(buf, Fill);
        return buf;
    }
}
