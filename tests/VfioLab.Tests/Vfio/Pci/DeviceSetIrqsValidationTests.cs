using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_SET_IRQS input checks (vfio_set_irqs_validate_and_prepare, the data copy, and the per-index
/// action table of vfio_pci_set_irqs_ioctl): each bad input's errno, and nothing enabled afterwards.</summary>
public sealed class DeviceSetIrqsValidationTests
{
    private const IrqSetFlags EventfdTrigger = IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger;

    private static void AssertNothingEnabled(PciDeviceLab lab, string device = "nic")
    {
        LabIrqState s = lab.Device(device).Irqs!;
        Assert.Null(s.Enabled);
        Assert.Equal(0, s.Vectors);
        Assert.Empty(s.TriggerVectors);
        Assert.False(s.IntxMasked || s.IntxUnmaskEventFd || s.ErrTrigger || s.ReqTrigger);
    }

    public static TheoryData<string, uint, IrqSetFlags, uint, uint, uint, int> BadHeaders => new()
    {
        // name, index, flags, start, count, argsz (0: exact), buffer (0: exact)
        { "argsz below minsz", 1, EventfdTrigger, 0, 1, 19, 24 },
        { "index past REQ", 5, IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, 0, 0, 0, 0 },
        { "count >= U32_MAX - start", 2, IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, 1, 0xfffffffe, 0, 0 },
        { "unknown flag bit", 1, IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger | (IrqSetFlags)0x40, 0, 1, 0, 0 },
        { "start past the vectors", 1, IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, 4, 0, 0, 0 },
        { "start + count past the vectors", 2, IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, 6, 3, 0, 0 },
        { "no data type", 1, IrqSetFlags.ActionTrigger, 0, 1, 0, 0 },
        { "two data types", 1, IrqSetFlags.DataNone | IrqSetFlags.DataBool | IrqSetFlags.ActionTrigger, 0, 1, 0, 0 },
        { "argsz too small for the data", 2, EventfdTrigger, 0, 2, 24, 28 },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void SetIrqs_BadHeader_ReturnsEINVALAndEnablesNothing(string why, uint index, IrqSetFlags flags, uint start, uint count, uint argsz, int buffer)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        byte[] data = (flags & IrqSetFlags.DataEventfd) != 0 ? PciDeviceLab.Fds([.. Enumerable.Repeat(efd, (int)Math.Min(count, 8))]) : [];
        long r = lab.SetIrqs(d, flags, index, start, count, data, argsz == 0 ? null : argsz, buffer == 0 ? null : buffer);
        Assert.True(-(long)Errno.EINVAL == r, $"{why}: got {r}");
        AssertNothingEnabled(lab);
    }

    [Fact]
    public void SetIrqs_ErrOnConventionalPci_ReturnsEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(-(long)Errno.EINVAL, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Err, 0, efd));
        Assert.False(lab.Device("edu").Irqs!.ErrTrigger);
    }

    [Fact]
    public void SetIrqs_HeaderOutsideBuffer_ReturnsEFAULT()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EFAULT, lab.Sys.Ioctl(d, VfioIoctl.DeviceSetIrqs, new byte[12]));
        AssertNothingEnabled(lab);
    }

    [Fact]
    public void SetIrqs_DataOutsideBuffer_ReturnsEFAULT()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        // argsz claims two eventfds, the buffer holds one: memdup_user faults.
        Assert.Equal(-(long)Errno.EFAULT, lab.SetIrqs(d, EventfdTrigger, 2, 0, 2, PciDeviceLab.Fds(efd), argsz: 28));
        AssertNothingEnabled(lab);
    }

    [Theory]
    [InlineData(VfioPciIrqIndex.Msi, IrqSetFlags.ActionMask)]
    [InlineData(VfioPciIrqIndex.Msix, IrqSetFlags.ActionUnmask)]
    [InlineData(VfioPciIrqIndex.Req, IrqSetFlags.ActionMask)]
    [InlineData(VfioPciIrqIndex.Err, IrqSetFlags.ActionUnmask)]
    [InlineData(VfioPciIrqIndex.Intx, IrqSetFlags.None)]
    [InlineData(VfioPciIrqIndex.Intx, IrqSetFlags.ActionMask | IrqSetFlags.ActionTrigger)]
    public void SetIrqs_ActionTheIndexLacks_ReturnsENOTTY(VfioPciIrqIndex index, IrqSetFlags action)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.ENOTTY, lab.SetIrqs(d, IrqSetFlags.DataNone | action, (uint)index, 0, 1));
        AssertNothingEnabled(lab);
    }

    [Fact]
    public void SetIrqs_FdNotOpen_ReturnsEBADF()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EBADF, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, 999));
        AssertNothingEnabled(lab);
    }

    [Fact]
    public void SetIrqs_FdNotAnEventfd_ReturnsEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EINVAL, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, d));
        AssertNothingEnabled(lab);
    }

    [Fact]
    public void SetIrqs_MsixSecondEventfdBad_TearsDownTheFirstAndDisables()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(-(long)Errno.EBADF, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 0, efd, 999));
        AssertNothingEnabled(lab);
        Assert.Equal(0, lab.ReadConfig16(d, 0xb2) & 0x8000); // MSI-X enable off in the hardware again
        Assert.False(lab.Device("nic").RaiseInterrupt(LabIrqIndex.Msix, 0));
    }

    [Fact]
    public void SetIrqs_NoPin_IntxIsEINVAL()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Quiet);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(-(long)Errno.EINVAL, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));
        AssertNothingEnabled(lab, "quiet");
    }
}
