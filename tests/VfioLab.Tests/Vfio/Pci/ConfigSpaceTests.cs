using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>The config region through the device fd (vfio_pci_config.c): the header and capability list the device
/// description gives, BAR sizing on the virtual BARs, read-only fields, the virtualized MSI bits, MSI-X and the
/// extended capability read through, PCIe FLR through device control, and accesses past cfg_size.</summary>
public sealed class ConfigSpaceTests
{
    [Fact]
    public void Edu_HeaderAndCapabilityList_AsDescribed()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        Assert.Equal(0x11e8_1234u, lab.ReadConfig32(d, 0x00));
        Assert.Equal(0x00ff_0000u, lab.ReadConfig32(d, 0x08) & 0xffff_ff00);
        Assert.Equal(0x10, lab.ReadConfig16(d, 0x06) & 0x10);   // capability list
        // MSI first, at 0x40 as on the real edu (the rig read 05 00 80 00 there): no PM on a conventional device
        // without PM reset, and the list packs from the end of the header.
        Assert.Equal(0x40u, lab.ReadConfig32(d, 0x34) & 0xff);
        Assert.Equal(0x0080_0005u, lab.ReadConfig32(d, 0x40));  // MSI, last in the chain, 64-bit, one vector
        Assert.Equal(0u, lab.ReadConfig32(d, 0x50));
        Assert.Equal(1u, (lab.ReadConfig32(d, 0x3c) >> 8) & 0xff); // INTA#
    }

    [Fact]
    public void CapabilitiesPresent_PackFromTheHeader_WithoutGapsForAbsentOnes()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Quiet); // PCI Express, no MSI, no MSI-X
        Assert.Equal(0x40u, lab.ReadConfig32(d, 0x34) & 0xff);
        Assert.Equal(0x5001, lab.ReadConfig16(d, 0x40));         // PM, then PCI Express right after its slot
        Assert.Equal(0x0010, lab.ReadConfig16(d, 0x50));         // PCI Express, last
    }

    [Fact]
    public void Express_CapabilityChainAndExtendedCapability()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int pos = (int)(lab.ReadConfig32(d, 0x34) & 0xff);
        var chain = new List<(int Pos, int Id)>();
        while (pos != 0)
        {
            ushort head = lab.ReadConfig16(d, pos);
            chain.Add((pos, head & 0xff));
            pos = head >> 8;
        }
        Assert.Equal([(0x40, 0x01), (0x50, 0x05), (0x70, 0x10), (0xb0, 0x11)], chain);
        Assert.Equal(0x0001_0003u, lab.ReadConfig32(d, 0x100)); // Device Serial Number, version 1, last
        Assert.Equal(0x8086_a01fu, (uint)lab.ReadConfig16(d, 0x2c) << 16 | lab.ReadConfig16(d, 0x2e));
        Assert.Equal(7u, lab.ReadConfig32(d, 0xb0 + 2) & 0x7ff);  // MSI-X table size 8
        Assert.Equal(2u, lab.ReadConfig32(d, 0xb0 + 4));           // table at offset 0 of BAR 2
        Assert.Equal(0x82u, lab.ReadConfig32(d, 0xb0 + 8));        // PBA after the 8 entries
    }

    [Theory]
    [InlineData(PciDeviceLab.Edu, 0xfff0_0000u)]           // 1 MiB 32-bit
    [InlineData(PciDeviceLab.Nic, 0xfff0_0004u)]           // 1 MiB 64-bit
    public void BarSizing_AllOnesWritten_ReadsSizeMaskAndFlags(string device, uint expected)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(device);
        uint original = lab.ReadConfig32(d, 0x10);
        Assert.Equal(4, lab.WriteConfig32(d, 0x10, 0xffff_ffff));
        Assert.Equal(expected, lab.ReadConfig32(d, 0x10));
        Assert.Equal(4, lab.WriteConfig32(d, 0x10, original));
        Assert.Equal(original, lab.ReadConfig32(d, 0x10));
    }

    [Fact]
    public void BarSizing_UpperHalfOf64BitBar_AndAbsentBar()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(4, lab.WriteConfig32(d, 0x14, 0xffff_ffff));
        Assert.Equal(0xffff_ffffu, lab.ReadConfig32(d, 0x14));
        Assert.Equal(4, lab.WriteConfig32(d, 0x1c, 0xffff_ffff)); // BAR3: none
        Assert.Equal(0u, lab.ReadConfig32(d, 0x1c));
        Assert.Equal(4, lab.WriteConfig32(d, 0x30, 0xffff_ffff)); // ROM BAR: 64 KiB
        Assert.Equal(0xffff_0001u, lab.ReadConfig32(d, 0x30));
    }

    [Fact]
    public void ReadOnlyFields_WritesDropped()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(4, lab.WriteConfig32(d, 0x00, 0xdead_beef));
        Assert.Equal(0x10d3_8086u, lab.ReadConfig32(d, 0x00));
        Assert.Equal(4, lab.WriteConfig32(d, 0xb0 + 4, 0x1234_5670)); // MSI-X table offset: no write function
        Assert.Equal(2u, lab.ReadConfig32(d, 0xb0 + 4));
        Assert.Equal(4, lab.WriteConfig32(d, 0x100, 0));
        Assert.Equal(0x0001_0003u, lab.ReadConfig32(d, 0x100));
    }

    [Fact]
    public void MsiEnableBit_WithoutSetIrqs_StaysOff()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        ushort flags = lab.ReadConfig16(d, 0x52);
        Assert.Equal(0x80, flags); // 64-bit; Multiple Message Capable reads msi_qmax, 0 before MSI was first enabled
        Assert.Equal(2, lab.WriteConfig16(d, 0x52, (ushort)(flags | 0x71)));
        // Enable cleared (MSI is enabled through the ioctl); the message-enable field clamped to msi_qmax.
        Assert.Equal(0x80, lab.ReadConfig16(d, 0x52));
        Assert.Null(lab.Device("nic").Irqs!.Enabled);
    }

    [Fact]
    public void MsiVectorCount_ReadsMsiQmaxAfterEnable()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, efd, efd, efd));
        Assert.Equal(2 << 1, lab.ReadConfig16(d, 0x52) & 0xe); // 3 vectors allocated: log2 rounded up is 2
    }

    [Fact]
    public void MemoryDisabled_BarAccessIsEIO()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        ushort cmd = lab.ReadConfig16(d, 4);
        Assert.Equal(2, lab.WriteConfig16(d, 4, (ushort)(cmd & ~2)));
        Assert.Equal(-(long)Errno.EIO, lab.Sys.Pread(d, new byte[4], 0));
        Assert.Equal(2, lab.WriteConfig16(d, 4, cmd));
        Assert.Equal(4, lab.Sys.Pread(d, new byte[4], 0));
    }

    [Theory]
    [InlineData(PciDeviceLab.Edu, 0x100, 4)]
    [InlineData(PciDeviceLab.Edu, 0xfe, 4)]
    [InlineData(PciDeviceLab.Nic, 0x1000, 1)]
    [InlineData(PciDeviceLab.Nic, 0xffc, 8)]
    public void Access_PastConfigSize_ReturnsEFAULT(string device, int offset, int length)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(device);
        byte[] buf = new byte[length];
        Assert.Equal(-(long)Errno.EFAULT, lab.ReadConfig(d, offset, buf));
        Assert.Equal(-(long)Errno.EFAULT, lab.WriteConfig(d, offset, buf));
    }

    [Fact]
    public void RegionInfo_ConfigSizeFollowsExpress()
    {
        var lab = new PciDeviceLab();
        Assert.Equal(256UL, RegionInfo(lab, lab.Open(PciDeviceLab.Edu), 7).Size);
        Assert.Equal(4096UL, RegionInfo(lab, lab.Open(PciDeviceLab.Nic), 7).Size);
    }

    [Fact]
    public void PcieFlrBit_ResetsFunctionAndReadsZero()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        ushort ctl = lab.ReadConfig16(d, 0x78);
        Assert.Equal(2, lab.WriteConfig16(d, 0x78, (ushort)(ctl | 0x8000)));
        Assert.Equal(1, lab.Device("nic").ResetCount);
        Assert.Equal(0, lab.ReadConfig16(d, 0x78) & 0x8000);
        Assert.Equal(0x2, lab.ReadConfig16(d, 4) & 0x2); // the saved command register came back
    }

    [Fact]
    public void MsixTable_ExcludedFromBarAccess_PbaIsNot()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        ulong bar2 = VfioPci.IndexToOffset(VfioPciRegionIndex.Bar2);
        Assert.Equal(4, lab.Sys.Pwrite(d, [1, 2, 3, 4], bar2 + 0x10));
        byte[] buf = new byte[0x90];
        Assert.Equal(0x90, lab.Sys.Pread(d, buf, bar2));
        Assert.All(buf[..0x80], b => Assert.Equal(0xff, b));   // 8 entries x 16 bytes
        Assert.All(buf[0x80..], b => Assert.Equal(0, b));
        Assert.Equal(4, lab.Sys.Pwrite(d, [9, 9, 9, 9], bar2 + 0x80));
        Assert.Equal(4, lab.Sys.Pread(d, buf.AsSpan(0, 4), bar2 + 0x80));
        Assert.Equal([9, 9, 9, 9], buf[..4]);
    }

    [Fact]
    public void RegionInfo_MsixBar_CarriesMsixMappableCapability()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        VfioRegionInfo small = RegionInfo(lab, d, 2);
        Assert.Equal((40u, 0u), (small.Argsz, small.CapOffset));
        Assert.True((small.Flags & RegionInfoFlags.Caps) != 0);
        byte[] arg = new byte[40];
        new VfioRegionInfo { Argsz = 40, Index = 2 }.Write(arg);
        Assert.Equal(0, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetRegionInfo, arg));
        VfioRegionInfo.TryRead(arg, out VfioRegionInfo full);
        Assert.Equal(32u, full.CapOffset);
        Assert.Equal((ushort)RegionInfoCapId.MsixMappable, BinaryPrimitives.ReadUInt16LittleEndian(arg.AsSpan(32)));
        Assert.Equal(RegionInfoFlags.None, RegionInfo(lab, d, 0).Flags & RegionInfoFlags.Caps);
    }

    internal static VfioRegionInfo RegionInfo(PciDeviceLab lab, int d, uint index)
    {
        byte[] arg = new byte[VfioRegionInfo.SizeOf];
        new VfioRegionInfo { Argsz = VfioRegionInfo.SizeOf, Index = index }.Write(arg);
        Assert.Equal(0, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetRegionInfo, arg));
        VfioRegionInfo.TryRead(arg, out VfioRegionInfo info);
        return info;
    }
}
