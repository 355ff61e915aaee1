using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>The ROM region (index 6) and reset_works from the reset method the PCI core finds.</summary>
public sealed class RomAndResetTests
{
    private static ulong Rom => VfioPci.IndexToOffset(VfioPciRegionIndex.Rom);

    [Fact]
    public void Rom_RegionInfoAndImageHeader()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        VfioRegionInfo info = ConfigSpaceTests.RegionInfo(lab, d, 6);
        Assert.Equal((64UL * 1024, RegionInfoFlags.Read, Rom), (info.Size, info.Flags, info.Offset));
        byte[] head = new byte[0x34];
        Assert.Equal(0x34, lab.Sys.Pread(d, head, Rom));
        Assert.Equal((0x55, 0xaa), (head[0], head[1]));
        Assert.Equal("PCIR"u8.ToArray(), head[0x1c..0x20]);
        byte[] tail = new byte[8];
        Assert.Equal(4, lab.Sys.Pread(d, tail, Rom + (64 * 1024) - 4)); // clipped at the BAR's end
    }

    [Fact]
    public void Rom_WriteAndPastEnd_ReturnEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EINVAL, lab.Sys.Pwrite(d, [1], Rom));
        Assert.Equal(-(long)Errno.EINVAL, lab.Sys.Pread(d, new byte[1], Rom + (64 * 1024)));
    }

    [Fact]
    public void Rom_None_SizeZeroAndReadEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        VfioRegionInfo info = ConfigSpaceTests.RegionInfo(lab, d, 6);
        Assert.Equal((0UL, RegionInfoFlags.None), (info.Size, info.Flags));
        Assert.Equal(-(long)Errno.EINVAL, lab.Sys.Pread(d, new byte[1], Rom));
    }

    [Theory]
    [InlineData(LabPciReset.Pm, true)]
    [InlineData(LabPciReset.Bus, true)]
    [InlineData(LabPciReset.Slot, true)]
    [InlineData(LabPciReset.None, false)]
    public void ResetMethod_DecidesResetFlagAndDeviceReset(LabPciReset method, bool works)
    {
        var lab = new PciDeviceLab(b => b.AddPciDevice("x", "0000:07:00.0", o => o.Bar(0, 1 << 20).Group(9).Express(false).Reset(method)));
        int d = lab.Open("0000:07:00.0");
        byte[] arg = new byte[VfioDeviceInfo.SizeOf];
        new VfioDeviceInfo { Argsz = VfioDeviceInfo.SizeOf }.Write(arg);
        Assert.Equal(0, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
        VfioDeviceInfo.TryRead(arg, out VfioDeviceInfo info);
        Assert.Equal(works, (info.Flags & DeviceInfoFlags.Reset) != 0);
        Assert.Equal(works ? 0 : -(long)Errno.EINVAL, lab.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
        Assert.Equal(works ? 1 : 0, lab.Device("x").ResetCount);
    }

    [Fact]
    public void SlotReset_SecondFunctionInSlot_ResetDoesNotWork()
    {
        var lab = new PciDeviceLab(b => b
            .AddPciDevice("f0", "0000:07:00.0", o => o.Bar(0, 1 << 20).Group(9).Reset(LabPciReset.Slot))
            .AddPciDevice("f1", "0000:07:00.1", o => o.Bar(0, 1 << 20).Group(10)));
        int d = lab.Open("0000:07:00.0");
        Assert.Equal(-(long)Errno.EINVAL, lab.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
        Assert.Equal(0, lab.Device("f0").ResetCount);
    }

    [Fact]
    public void FlrOnConventional_RefusedByTheBuilder()
    {
        Assert.Throws<LabConfigurationException>(() => new LabHostBuilder()
            .AddPciDevice("x", "0000:07:00.0", o => o.Bar(0, 1 << 20).Express(false).Reset(LabPciReset.Flr)).Build());
    }
}
