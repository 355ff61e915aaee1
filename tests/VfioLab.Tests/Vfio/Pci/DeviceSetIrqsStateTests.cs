using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_SET_IRQS actions and the state they leave (vfio_pci_intrs.c): enabling and disabling MSI, MSI-X
/// (with dynamic vectors) and INTx, INTx automasking and unmasking, loopback triggers, the ERR and REQ triggers, and
/// the device's interrupts reaching the user's eventfds.</summary>
public sealed class DeviceSetIrqsStateTests
{
    private const IrqSetFlags NoneTrigger = IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger;

    [Fact]
    public void Msi_EnableRaiseDisable_SignalsEventfdUntilDisabled()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        LabDevice edu = lab.Device("edu");

        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, efd));
        LabIrqState s = edu.Irqs!;
        Assert.Equal((LabIrqIndex.Msi, 1, false, false, false, false), (s.Enabled!.Value, s.Vectors, s.IntxMasked, s.IntxUnmaskEventFd, s.ErrTrigger, s.ReqTrigger));
        Assert.Equal([0], s.TriggerVectors);
        Assert.True(edu.RaiseInterrupt(LabIrqIndex.Msi));
        Assert.True(edu.RaiseInterrupt(LabIrqIndex.Msi));
        Assert.Equal(2, lab.Process.ReadEventFd(efd));
        Assert.Equal(-(long)Errno.EAGAIN, lab.Process.ReadEventFd(efd));

        Assert.Equal(0, lab.SetIrqs(d, NoneTrigger, (uint)VfioPciIrqIndex.Msi, 0, 0));
        Assert.Null(edu.Irqs!.Enabled);
        Assert.False(edu.RaiseInterrupt(LabIrqIndex.Msi));
        Assert.Equal(-(long)Errno.EAGAIN, lab.Process.ReadEventFd(efd));
    }

    [Fact]
    public void Msi_LoopbackDataNoneAndBool_SignalsChosenVectors()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int a = lab.Process.CreateEventFd();
        int b = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, a, b));
        Assert.Equal(0, lab.SetIrqs(d, NoneTrigger, (uint)VfioPciIrqIndex.Msi, 0, 2));
        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataBool | IrqSetFlags.ActionTrigger, (uint)VfioPciIrqIndex.Msi, 0, 2, [0, 1]));
        Assert.Equal((1L, 2L), (lab.Process.ReadEventFd(a), lab.Process.ReadEventFd(b)));
    }

    [Fact]
    public void Msi_VectorPastThoseAllocated_ReturnsEINVALAndKeepsTheFirst()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, efd));
        Assert.Equal(-(long)Errno.EINVAL, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 2, efd));
        LabIrqState s = lab.Device("nic").Irqs!;
        Assert.Equal((LabIrqIndex.Msi, 1), (s.Enabled!.Value, s.Vectors));
        Assert.Equal([0], s.TriggerVectors);
    }

    [Fact]
    public void Msix_AddVectorLater_AllocatesDynamicallyAndShowsEnableInConfig()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int a = lab.Process.CreateEventFd();
        int b = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 0, a));
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 5, b));
        LabIrqState s = lab.Device("nic").Irqs!;
        Assert.Equal((LabIrqIndex.Msix, 6), (s.Enabled!.Value, s.Vectors));
        Assert.Equal([0, 5], s.TriggerVectors);
        Assert.Equal(0x8000, lab.ReadConfig16(d, 0xb2) & 0x8000);
        Assert.True(lab.Device("nic").RaiseInterrupt(LabIrqIndex.Msix, 5));
        Assert.False(lab.Device("nic").RaiseInterrupt(LabIrqIndex.Msix, 3));
        Assert.Equal(1, lab.Process.ReadEventFd(b));
    }

    [Fact]
    public void Msix_TeardownOneVectorWithMinusOne_KeepsTheOthers()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int a = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 0, a, a));
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 1, -1));
        Assert.Equal([0], lab.Device("nic").Irqs!.TriggerVectors);
    }

    [Fact]
    public void MsiWhileIntxEnabled_ReturnsEINVALAndIntxStays()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));
        Assert.Equal(-(long)Errno.EINVAL, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, efd));
        Assert.Equal(LabIrqIndex.Intx, lab.Device("nic").Irqs!.Enabled);
    }

    [Fact]
    public void Intx_InterruptAutomasksAndUnmaskResendsPendingLevel()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        LabDevice edu = lab.Device("edu");
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));

        Assert.True(edu.RaiseInterrupt(LabIrqIndex.Intx));
        Assert.True(edu.Irqs!.IntxMasked);
        Assert.False(edu.RaiseInterrupt(LabIrqIndex.Intx)); // masked: held pending
        Assert.Equal(1, lab.Process.ReadEventFd(efd));

        // Unmask with the line still asserted: sent again, stays masked.
        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataNone | IrqSetFlags.ActionUnmask, 0, 0, 1));
        Assert.Equal(1, lab.Process.ReadEventFd(efd));
        Assert.True(edu.Irqs!.IntxMasked);
        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataBool | IrqSetFlags.ActionUnmask, 0, 0, 1, [1]));
        Assert.False(edu.Irqs!.IntxMasked);

        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataBool | IrqSetFlags.ActionMask, 0, 0, 1, [1]));
        Assert.True(edu.Irqs!.IntxMasked);
    }

    [Theory]
    [InlineData(IrqSetFlags.DataNone | IrqSetFlags.ActionMask, 0u, 2u, -(long)Errno.EINVAL)]
    [InlineData(IrqSetFlags.DataEventfd | IrqSetFlags.ActionMask, 0u, 1u, -(long)Errno.ENOTTY)]
    [InlineData(IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, 0u, 1u, -(long)Errno.EINVAL)]
    public void Intx_ActionsBeforeEnable_AreRefused(IrqSetFlags flags, uint start, uint count, long errno)
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        byte[] data = (flags & IrqSetFlags.DataEventfd) != 0 ? PciDeviceLab.Fds(efd) : [];
        if ((flags & IrqSetFlags.DataEventfd) != 0)
        {
            // MASK with an eventfd is refused even with INTx enabled.
            Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));
        }
        Assert.Equal(errno, lab.SetIrqs(d, flags, (uint)VfioPciIrqIndex.Intx, start, count, data));
        Assert.False(lab.Device("nic").Irqs!.IntxMasked);
    }

    [Fact]
    public void Intx_UnmaskEventfdTwice_ReturnsEBUSY()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));
        IrqSetFlags unmaskFd = IrqSetFlags.DataEventfd | IrqSetFlags.ActionUnmask;
        Assert.Equal(0, lab.SetIrqs(d, unmaskFd, 0, 0, 1, PciDeviceLab.Fds(efd)));
        Assert.Equal(-(long)Errno.EBUSY, lab.SetIrqs(d, unmaskFd, 0, 0, 1, PciDeviceLab.Fds(efd)));
        Assert.True(lab.Device("nic").Irqs!.IntxUnmaskEventFd);
        Assert.Equal(0, lab.SetIrqs(d, unmaskFd, 0, 0, 1, PciDeviceLab.Fds(-1)));
        Assert.False(lab.Device("nic").Irqs!.IntxUnmaskEventFd);
    }

    [Fact]
    public void VirtualIntxDisableBit_MasksAndUnmasksIntx()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Intx, 0, efd));
        ushort cmd = lab.ReadConfig16(d, 4);
        Assert.Equal(2, lab.WriteConfig16(d, 4, (ushort)(cmd | 0x400)));
        Assert.True(lab.Device("edu").Irqs!.IntxMasked);
        Assert.False(lab.Device("edu").RaiseInterrupt(LabIrqIndex.Intx)); // held pending while disabled
        Assert.Equal(-(long)Errno.EAGAIN, lab.Process.ReadEventFd(efd));
        // Clearing the bit unmasks; the pending level is sent and INTx stays masked until the user unmasks.
        Assert.Equal(2, lab.WriteConfig16(d, 4, cmd));
        Assert.Equal(1, lab.Process.ReadEventFd(efd));
        Assert.True(lab.Device("edu").Irqs!.IntxMasked);
        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataNone | IrqSetFlags.ActionUnmask, 0, 0, 1));
        Assert.False(lab.Device("edu").Irqs!.IntxMasked);
        Assert.Equal(cmd & 0x400, lab.ReadConfig16(d, 4) & 0x400); // the virtual bit reads back as written
    }

    [Fact]
    public void ReqTrigger_SetLoopbackClear()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        uint req = (uint)VfioPciIrqIndex.Req;
        Assert.Equal(-(long)Errno.EINVAL, lab.SetIrqs(d, NoneTrigger, req, 0, 1)); // no trigger to loop back
        Assert.Equal(0, lab.SetEventFds(d, req, 0, efd));
        Assert.True(lab.Device("edu").Irqs!.ReqTrigger);
        Assert.Equal(0, lab.SetIrqs(d, IrqSetFlags.DataBool | IrqSetFlags.ActionTrigger, req, 0, 1, [1]));
        Assert.True(lab.Device("edu").RaiseInterrupt(LabIrqIndex.Req));
        Assert.Equal(2, lab.Process.ReadEventFd(efd));
        Assert.Equal(-(long)Errno.EINVAL, lab.SetIrqs(d, IrqSetFlags.DataBool | IrqSetFlags.ActionTrigger, req, 0, 0));
        Assert.Equal(0, lab.SetIrqs(d, NoneTrigger, req, 0, 0));
        Assert.False(lab.Device("edu").Irqs!.ReqTrigger);
    }

    [Fact]
    public void ErrTrigger_OnExpress_SetAndCleared()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Err, 0, efd));
        Assert.True(lab.Device("nic").RaiseInterrupt(LabIrqIndex.Err));
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Err, 0, -1));
        Assert.False(lab.Device("nic").Irqs!.ErrTrigger);
        Assert.Equal(1, lab.Process.ReadEventFd(efd));
    }

    [Fact]
    public void CloseDevice_TearsDownEveryInterrupt()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msix, 0, efd));
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Req, 0, efd));
        Assert.Equal(0, lab.Sys.Close(d));
        LabIrqState s = lab.Device("nic").Irqs!;
        Assert.Null(s.Enabled);
        Assert.False(s.ReqTrigger);
        Assert.Empty(s.TriggerVectors);
    }

    [Fact]
    public void Eventfd_ClosedFdKeepsReceiving()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Edu);
        int efd = lab.Process.CreateEventFd();
        Assert.Equal(0, lab.SetEventFds(d, (uint)VfioPciIrqIndex.Msi, 0, efd));
        Assert.Equal(0, lab.Sys.Close(efd));
        Assert.True(lab.Device("edu").RaiseInterrupt(LabIrqIndex.Msi));
        Assert.Equal(-(long)Errno.EBADF, lab.Process.ReadEventFd(efd));
        Assert.Equal(-(long)Errno.EINVAL, lab.Process.ReadEventFd(d));
    }
}
