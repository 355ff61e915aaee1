using System.Buffers.Binary;
using VfioLab.Abi;

using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_GET_INFO on a vfio-pci fd (vfio_pci_core.c vfio_pci_ioctl_get_info): minsz 16,
/// argsz &lt; 16 is EINVAL, and only min(argsz, sizeof) bytes are copied back.</summary>
public sealed class DeviceGetInfoTests
{
    [Theory]
    [InlineData(0u)]
    [InlineData(8u)]
    [InlineData(15u)]
    public void GetInfo_ArgszBelowMinsz_ReturnsEINVALAndWritesNothing(uint argsz)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        byte[] arg = new byte[VfioDeviceInfo.SizeOf];
        arg.AsSpan(4).Fill(0xaa);
        BinaryPrimitives.WriteUInt32LittleEndian(arg, argsz);
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
        Assert.Equal(argsz, BinaryPrimitives.ReadUInt32LittleEndian(arg));
        Assert.All(arg[4..], b => Assert.Equal(0xaa, b));
    }

    [Fact]
    public void GetInfo_BufferShorterThanMinsz_ReturnsEFAULT()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        byte[] arg = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 16);
        Assert.Equal(-(long)Errno.EFAULT, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(19)]
    [InlineData(23)]
    public void GetInfo_ArgszBelowStructSize_CopiesBackExactlyArgsz(int argsz)
    {
        // Since v6.6 ("vfio: align capability structures", which also added the pad field, so the
        // struct is 24 bytes) vfio_pci_ioctl_get_info copies back min(argsz, sizeof): nothing past
        // argsz is ever written. (Before v6.6 it copied 16 bytes, or 20 once argsz covered cap_offset.)
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        byte[] arg = new byte[32];
        arg.AsSpan(4).Fill(0xaa);
        BinaryPrimitives.WriteUInt32LittleEndian(arg, (uint)argsz);

        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));

        Assert.Equal((uint)(DeviceInfoFlags.Pci | DeviceInfoFlags.Reset), BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(4)));
        Assert.Equal(VfioPci.NumRegions, BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(8)));
        Assert.Equal(VfioPci.NumIrqs, BinaryPrimitives.ReadUInt32LittleEndian(arg.AsSpan(12)));
        Assert.All(arg[16..argsz], b => Assert.Equal(0, b));
        Assert.All(arg[argsz..], b => Assert.Equal(0xaa, b));
    }

    [Fact]
    public void GetInfo_FullStruct_ReportsPciResetRegionsIrqsNoCaps()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        byte[] arg = new byte[VfioPciDriver.DeviceInfoSizeV66 + 8];
        arg.AsSpan(VfioPciDriver.DeviceInfoSizeV66).Fill(0xaa);
        new VfioDeviceInfo { Argsz = (uint)arg.Length, CapOffset = 0x55 }.Write(arg);

        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));

        Assert.True(VfioDeviceInfo.TryRead(arg, out VfioDeviceInfo info));
        Assert.Equal((uint)arg.Length, info.Argsz);
        Assert.Equal(DeviceInfoFlags.Pci | DeviceInfoFlags.Reset, info.Flags);
        Assert.Equal(9u, info.NumRegions);
        Assert.Equal(5u, info.NumIrqs);
        Assert.Equal(0u, info.CapOffset);
        Assert.All(arg[VfioDeviceInfo.SizeOf..VfioPciDriver.DeviceInfoSizeV66], b => Assert.Equal(0, b));
        Assert.All(arg[VfioPciDriver.DeviceInfoSizeV66..], b => Assert.Equal(0xaa, b));
    }

    [Fact]
    public void GetInfo_MdevDevice_ReportsNoRegions()
    {
        var t = VfioTestHost.WithFake(out _);
        (int c, int g) = t.Attach(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        int d = (int)t.GetDeviceFd(g, VfioTestHost.MdevName);
        byte[] arg = new byte[VfioDeviceInfo.SizeOf];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 15);
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
        BinaryPrimitives.WriteUInt32LittleEndian(arg, VfioDeviceInfo.SizeOf);
        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
        Assert.True(VfioDeviceInfo.TryRead(arg, out VfioDeviceInfo info));
        Assert.Equal(0u, info.NumRegions);
    }
}
