using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_GET_IRQ_INFO (vfio_pci_ioctl_get_irq_info and vfio_pci_get_irq_count): what a real 6.x kernel
/// answered for QEMU's edu device, PCIe's ERR index, the counts from the capabilities, and every errno path.</summary>
public sealed class DeviceGetIrqInfoTests
{
    private const IrqInfoFlags IntxFlags = IrqInfoFlags.Eventfd | IrqInfoFlags.Maskable | IrqInfoFlags.Automasked;
    private const IrqInfoFlags OtherFlags = IrqInfoFlags.Eventfd | IrqInfoFlags.Noresize;

    [Theory]
    [InlineData(VfioPciIrqIndex.Intx, 1u, IntxFlags)]
    [InlineData(VfioPciIrqIndex.Msi, 1u, OtherFlags)]
    [InlineData(VfioPciIrqIndex.Msix, 0u, OtherFlags)]
    [InlineData(VfioPciIrqIndex.Req, 1u, OtherFlags)]
    public void GetIrqInfo_EduDevice_AnswersAsTheRealKernel(VfioPciIrqIndex index, uint count, IrqInfoFlags flags)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        Assert.Equal(0, lab.IrqInfo(d, (uint)index, out VfioIrqInfo info));
        Assert.Equal((count, flags, (uint)index, (uint)VfioIrqInfo.SizeOf), (info.Count, info.Flags, info.Index, info.Argsz));
    }

    [Fact]
    public void GetIrqInfo_ErrOnConventionalPci_ReturnsEINVALAndWritesNothing()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        Assert.Equal(-(long)Errno.EINVAL, lab.IrqInfo(d, (uint)VfioPciIrqIndex.Err, out VfioIrqInfo info));
        Assert.Equal((0u, IrqInfoFlags.None), (info.Count, info.Flags));
    }

    [Theory]
    [InlineData(VfioPciIrqIndex.Intx, 1u)]
    [InlineData(VfioPciIrqIndex.Msi, 4u)]
    [InlineData(VfioPciIrqIndex.Msix, 8u)]
    [InlineData(VfioPciIrqIndex.Err, 1u)]
    [InlineData(VfioPciIrqIndex.Req, 1u)]
    public void GetIrqInfo_ExpressDevice_CountsFromItsCapabilities(VfioPciIrqIndex index, uint count)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(0, lab.IrqInfo(d, (uint)index, out VfioIrqInfo info));
        Assert.Equal(count, info.Count);
    }

    [Theory]
    [InlineData(VfioPciIrqIndex.Intx)]
    [InlineData(VfioPciIrqIndex.Msi)]
    [InlineData(VfioPciIrqIndex.Msix)]
    public void GetIrqInfo_NoPinNoMsi_CountIsZero(VfioPciIrqIndex index)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Quiet);
        Assert.Equal(0, lab.IrqInfo(d, (uint)index, out VfioIrqInfo info));
        Assert.Equal(0u, info.Count);
    }

    [Theory]
    [InlineData(5u)]
    [InlineData(0xffffffffu)]
    public void GetIrqInfo_IndexPastReq_ReturnsEINVAL(uint index)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EINVAL, lab.IrqInfo(d, index, out VfioIrqInfo info));
        Assert.Equal(0u, info.Count);
    }

    [Fact]
    public void GetIrqInfo_ArgszBelowMinsz_ReturnsEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EINVAL, lab.IrqInfo(d, 0, out VfioIrqInfo info, argsz: 15));
        Assert.Equal((15u, IrqInfoFlags.None, 0u), (info.Argsz, info.Flags, info.Count));
    }

    [Fact]
    public void GetIrqInfo_BufferShorterThanMinsz_ReturnsEFAULT()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        byte[] arg = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, 16);
        Assert.Equal(-(long)Errno.EFAULT, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetIrqInfo, arg));
        Assert.Equal(16u, BinaryPrimitives.ReadUInt32LittleEndian(arg));
    }

    [Fact]
    public void GetIrqInfo_LargeArgsz_WritesOnly16Bytes()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        byte[] arg = new byte[24];
        arg.AsSpan(16).Fill(0xa5);
        new VfioIrqInfo { Argsz = 24, Index = 2 }.Write(arg);
        Assert.Equal(0, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetIrqInfo, arg));
        Assert.All(arg[16..], b => Assert.Equal(0xa5, b));
    }

    [Fact]
    public void GetDeviceInfo_EduWithoutResetMethod_FlagsPciOnly()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        byte[] arg = new byte[VfioDeviceInfo.SizeOf];
        new VfioDeviceInfo { Argsz = VfioDeviceInfo.SizeOf }.Write(arg);
        Assert.Equal(0, lab.Sys.Ioctl(d, VfioIoctl.DeviceGetInfo, arg));
        VfioDeviceInfo.TryRead(arg, out VfioDeviceInfo info);
        Assert.Equal((DeviceInfoFlags.Pci, 9u, 5u), (info.Flags, info.NumRegions, info.NumIrqs));
        Assert.Equal(-(long)Errno.EINVAL, lab.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
        Assert.Equal(0, lab.Device("edu").ResetCount);
    }
}
