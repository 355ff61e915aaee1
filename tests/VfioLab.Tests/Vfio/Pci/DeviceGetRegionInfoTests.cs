using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_GET_REGION_INFO on a vfio-pci fd (vfio_pci_core.c
/// vfio_pci_ioctl_get_region_info): BARs, ROM, config; VGA without VGA and indexes past the last
/// region are EINVAL; offsets are index &lt;&lt; 40.</summary>
public sealed class DeviceGetRegionInfoTests
{
    private static long Query(VfioTestHost t, int d, uint index, out VfioRegionInfo info, uint argsz = VfioRegionInfo.SizeOf)
    {
        byte[] arg = new byte[VfioRegionInfo.SizeOf];
        new VfioRegionInfo { Argsz = argsz, Index = index }.Write(arg);
        long r = t.Sys.Ioctl(d, VfioIoctl.DeviceGetRegionInfo, arg);
        VfioRegionInfo.TryRead(arg, out info);
        return r;
    }

    [Theory]
    [InlineData(VfioPciRegionIndex.Vga)]
    [InlineData((VfioPciRegionIndex)9)]
    [InlineData((VfioPciRegionIndex)10)]
    [InlineData((VfioPciRegionIndex)0xffffffff)]
    public void GetRegionInfo_VgaOrPastLastRegion_ReturnsEINVAL(VfioPciRegionIndex index)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.EINVAL, Query(t, d, (uint)index, out VfioRegionInfo info));
        Assert.Equal(0UL, info.Size);
        Assert.Equal(0UL, info.Offset);
        Assert.Equal(RegionInfoFlags.None, info.Flags);
    }

    [Fact]
    public void GetRegionInfo_ArgszBelowMinsz_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.EINVAL, Query(t, d, 0, out VfioRegionInfo info, argsz: 31));
        Assert.Equal(0UL, info.Size);
    }

    [Fact]
    public void GetRegionInfo_BufferShorterThanMinsz_ReturnsEFAULT()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        byte[] arg = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 32);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(d, VfioIoctl.DeviceGetRegionInfo, arg));
    }

    [Theory]
    [InlineData(VfioPciRegionIndex.Bar0, VfioTestHost.GpuBar0Size)]
    [InlineData(VfioPciRegionIndex.Bar2, VfioTestHost.GpuBar2Size)]
    public void GetRegionInfo_ImplementedBar_ReportsSizeReadWriteMmapAndOffset(VfioPciRegionIndex index, ulong size)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(0, Query(t, d, (uint)index, out VfioRegionInfo info));
        Assert.Equal(size, info.Size);
        Assert.Equal(RegionInfoFlags.Read | RegionInfoFlags.Write | RegionInfoFlags.Mmap, info.Flags);
        Assert.Equal((ulong)index << 40, info.Offset);
        Assert.Equal(VfioPci.IndexToOffset(index), info.Offset);
        Assert.Equal(0u, info.CapOffset);
    }

    [Theory]
    [InlineData(VfioPciRegionIndex.Bar1)]
    [InlineData(VfioPciRegionIndex.Bar3)]
    [InlineData(VfioPciRegionIndex.Bar4)]
    [InlineData(VfioPciRegionIndex.Bar5)]
    [InlineData(VfioPciRegionIndex.Rom)]
    public void GetRegionInfo_UnimplementedBarOrNoRom_ReportsSizeZeroNoFlags(VfioPciRegionIndex index)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(0, Query(t, d, (uint)index, out VfioRegionInfo info));
        Assert.Equal(0UL, info.Size);
        Assert.Equal(RegionInfoFlags.None, info.Flags);
        Assert.Equal(VfioPci.IndexToOffset(index), info.Offset);
    }

    [Fact]
    public void GetRegionInfo_Config_Reports4KiBReadWrite()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(0, Query(t, d, (uint)VfioPciRegionIndex.Config, out VfioRegionInfo info));
        Assert.Equal(4096UL, info.Size);
        Assert.Equal(RegionInfoFlags.Read | RegionInfoFlags.Write, info.Flags);
        Assert.Equal(7UL << 40, info.Offset);
    }
}
