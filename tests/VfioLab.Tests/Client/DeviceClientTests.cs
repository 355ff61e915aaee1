using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Tests.Client;

/// <summary>The typed client's device calls against the simulated vfio-pci driver.</summary>
public sealed class DeviceClientTests
{
    private static (ClientHost Host, Container Container, Group Group, Device Device) Gpu()
    {
        var host = new ClientHost();
        Container container = Container.Open(host.Sys);
        Group group = Group.Open(host.Sys, 1);
        group.SetContainer(container);
        container.SelectIommu();
        return (host, container, group, group.OpenDevice("0000:01:00.0"));
    }

    [Fact]
    public void OpenDevice_UnknownName_ThrowsENODEV()
    {
        (_, _, Group group, _) = Gpu();
        VfioException e = Assert.Throws<VfioException>(() => group.OpenDevice("0000:09:00.0"));
        Assert.Equal(Errno.ENODEV, e.Errno);
        Assert.Contains("0000:09:00.0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetInfo_VfioPci_ReportsPciRegionsAndIrqs()
    {
        (_, _, _, Device device) = Gpu();
        DeviceInfo info = device.GetInfo();
        Assert.NotEqual(DeviceInfoFlags.None, info.Flags & DeviceInfoFlags.Pci);
        Assert.Equal((uint)VfioPci.NumRegions, info.NumRegions);
        Assert.Equal((uint)VfioPci.NumIrqs, info.NumIrqs);
    }

    [Fact]
    public void GetRegionInfo_Bar0_SizeAndMmap()
    {
        (_, _, _, Device device) = Gpu();
        RegionInfo bar0 = device.GetRegionInfo(0);
        Assert.Equal(16UL << 20, bar0.Size);
        Assert.True(bar0.CanMmap);
        Assert.Equal(VfioPci.IndexToOffset(0u), bar0.Offset);
        Assert.Equal(0UL, device.GetRegionInfo(1).Size);
    }

    [Fact]
    public void GetRegionInfo_IndexPastTheRegions_ThrowsEINVAL()
    {
        (_, _, _, Device device) = Gpu();
        Assert.Equal(Errno.EINVAL, Assert.Throws<VfioException>(() => device.GetRegionInfo(99)).Errno);
    }

    [Fact]
    public void MapRegion_WriteThroughTheMapping_ReadBackThroughPread()
    {
        (ClientHost host, _, _, Device device) = Gpu();
        ulong bar = device.MapRegion(0, 0, 1UL << 20);
        Assert.Equal(0, host.Sys.WriteMemory(bar + 0x40, [0x11, 0x22, 0x33, 0x44]));
        byte[] back = new byte[4];
        Assert.Equal(4, device.ReadRegion(0, 0x40, back));
        Assert.Equal(new byte[] { 0x11, 0x22, 0x33, 0x44 }, back);
    }

    [Fact]
    public void SetMemoryEnable_Off_CpuAccessToTheBarFaults_OnAgainWorks()
    {
        (ClientHost host, _, _, Device device) = Gpu();
        ulong bar = device.MapRegion(0, 0, 1UL << 20);
        device.SetMemoryEnable(false);
        byte[] b = new byte[4];
        Assert.Equal(Errno.EIO.AsReturn(), host.Sys.ReadMemory(bar, b));
        device.SetMemoryEnable(true);
        Assert.Equal(0, host.Sys.ReadMemory(bar, b));
    }

    [Fact]
    public void HotReset_InfoListsTheSlot_ResetWithTheGroupSucceeds()
    {
        (_, _, Group group, Device device) = Gpu();
        IReadOnlyList<HotResetDevice> devices = device.GetHotResetInfo();
        HotResetDevice only = Assert.Single(devices);
        Assert.Equal(1u, only.GroupId);
        Assert.Equal("0000:01:00.0", only.ToString());
        device.PciHotReset([group]);
        device.Reset();
    }

    [Fact]
    public void HotReset_WithoutProofOfOwnership_ThrowsAndNamesTheGroups()
    {
        (ClientHost host, _, _, Device device) = Gpu();
        using Group other = Group.Open(host.Sys, 2);
        VfioException e = Assert.Throws<VfioException>(() => device.PciHotReset([other]));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("groups [2]", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>The typed client's interrupt calls: GET_IRQ_INFO and SET_IRQS through <see cref="Device"/>.</summary>
public sealed class DeviceIrqClientTests
{
    [Fact]
    public void GetIrqInfo_EduDevice_CountsAndErrOnConventionalThrowsEINVAL()
    {
        var lab = new VfioLab.Tests.Vfio.Pci.PciDeviceLab();
        var container = Container.Open(lab.Sys);
        var group = Group.Open(lab.Sys, 1);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        Device edu = group.OpenDevice(VfioLab.Tests.Vfio.Pci.PciDeviceLab.Edu);
        Assert.Equal(new IrqInfo(0, IrqInfoFlags.Eventfd | IrqInfoFlags.Maskable | IrqInfoFlags.Automasked, 1), edu.GetIrqInfo(0));
        Assert.Equal(new IrqInfo(1, IrqInfoFlags.Eventfd | IrqInfoFlags.Noresize, 1), edu.GetIrqInfo(1));
        VfioException e = Assert.Throws<VfioException>(() => edu.GetIrqInfo((uint)VfioPciIrqIndex.Err));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("index 3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetIrqEventFds_ThenDisable_StateFollows()
    {
        var lab = new VfioLab.Tests.Vfio.Pci.PciDeviceLab();
        var container = Container.Open(lab.Sys);
        var group = Group.Open(lab.Sys, 2);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        Device nic = group.OpenDevice(VfioLab.Tests.Vfio.Pci.PciDeviceLab.Nic);
        int efd = lab.Process.CreateEventFd();
        nic.SetIrqEventFds((uint)VfioPciIrqIndex.Msix, 0, [efd, efd]);
        Assert.Equal([0, 1], lab.Device("nic").Irqs!.TriggerVectors);
        Assert.Equal(Errno.EINVAL, Assert.Throws<VfioException>(() => nic.DisableIrqs((uint)VfioPciIrqIndex.Msi)).Errno);
        nic.DisableIrqs((uint)VfioPciIrqIndex.Msix);
        Assert.Null(lab.Device("nic").Irqs!.Enabled);
    }
}
