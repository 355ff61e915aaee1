using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Simulation;

/// <summary>
/// A device's DMA carried out end to end: translated by its group's domain, then landing in RAM
/// frames or a peer's BAR, stopping at the first IOMMU fault or unsupported request. The host has a
/// GPU (group 1, attached to a domain the test maps), a NIC (group 2, no domain; its BAR is the
/// peer-to-peer target) and an mdev (emulated group).
/// </summary>
public sealed class DeviceDmaTests
{
    private const ulong K4 = 1UL << 12;
    private const ulong MiB = 1UL << 20;
    private const string GpuName = "0000:01:00.0";

    private readonly SimulatedHost _host;
    private readonly SimulatedDevice _gpu;
    private readonly SimulatedDevice _nic;
    private readonly IommuDomain _domain;
    private readonly PhysAddr _frames;

    public DeviceDmaTests()
    {
        _host = new SimulatedHost(64 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, KernelSettings.Default);
        Assert.Null(_host.AddPciDevice("gpu", PciAddress.Parse(GpuName), [new PciBarRequest(0, MiB)], DriverBinding.Vfio, 1));
        Assert.Null(_host.AddPciDevice("nic", PciAddress.Parse("0000:02:00.0"), [new PciBarRequest(0, MiB)], DriverBinding.Vfio, 2));
        Assert.Null(_host.AddMdevDevice("vgpu", new Guid("5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f001"), new MdevVendorDriver(misbehaving: false, _host.Machine.PageShift), 10));
        _host.Seal();
        _gpu = _host.Devices["gpu"];
        _nic = _host.Devices["nic"];
        Assert.Equal(Errno.None, _gpu.Group.TryAllocateDomain(out IommuDomain? d));
        _domain = d!;
        Assert.Equal(Errno.None, _gpu.Group.Attach(_domain));
        Assert.True(_host.Machine.Memory.TryAllocateRun(4, out PfnRun run));
        Assert.Equal(4UL, run.Count);
        _frames = new PhysAddr(run.First.Value << 12);
    }

    private PciBar NicBar => _nic.Function!.Bars[0];

    private void Map(ulong iova, PhysAddr phys, ulong size, IommuProt prot) =>
        Assert.Equal(Errno.None, _domain.Map(new Iova(iova), phys, size, prot));

    private byte[] Ram(PhysAddr at, int length)
    {
        byte[] b = new byte[length];
        Assert.True(_host.Machine.Memory.Read(at, b));
        return b;
    }

    private static byte[] Pattern(int length, byte first)
    {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++)
        {
            b[i] = (byte)(first + i);
        }
        return b;
    }

    [Fact]
    public void Write_MappedRam_LandsInFrames()
    {
        Map(0x10000, _frames, 4 * K4, IommuProt.ReadWrite);
        byte[] data = Pattern(0x1800, 1);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(0x10800), data);

        Assert.True(r.Ok);
        Assert.Equal(0x1800UL, r.Bytes);
        Assert.Equal(data, Ram(_frames.Plus(0x800), data.Length));
        Assert.Equal(0, _host.DmaFaults.Count);
    }

    [Fact]
    public void Read_MappedRam_ReturnsBytes()
    {
        Map(0, _frames, 2 * K4, IommuProt.Read);
        byte[] data = Pattern(16, 0xa0);
        Assert.True(_host.Machine.Memory.Write(_frames.Plus(K4 - 8), data));

        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(K4 - 8), 16);

        Assert.True(r.Ok);
        Assert.Equal(16UL, r.Bytes);
        Assert.Equal(data, r.Data);
    }

    [Fact]
    public void Write_ReadOnlyMapping_FaultsWriteDeniedAtIovaAndWritesNothing()
    {
        Map(0x20000, _frames, K4, IommuProt.Read);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(0x20010), [1, 2, 3, 4]);

        Assert.False(r.Ok);
        Assert.Equal(0UL, r.Bytes);
        Assert.Equal(new IommuFault(GpuName, new Iova(0x20010), true, IommuFaultReason.WriteDenied), r.Fault);
        Assert.Equal([r.Fault!.Value], _host.DmaFaults.Snapshot());
        Assert.Equal(new byte[4], Ram(_frames.Plus(0x10), 4));
    }

    [Fact]
    public void Read_UnmappedIova_FaultsNotMapped()
    {
        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(0xdead0000), 4);

        Assert.Equal(new IommuFault(GpuName, new Iova(0xdead0000), false, IommuFaultReason.NotMapped), r.Fault);
        Assert.Equal(0UL, r.Bytes);
        Assert.Empty(r.Data);
        Assert.Equal(1, _host.DmaFaults.Count);
    }

    [Fact]
    public void Write_CrossesIntoUnmapped_TransfersFirstPartThenFaults()
    {
        Map(0, _frames, K4, IommuProt.ReadWrite);
        byte[] data = Pattern(0x200, 7);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(K4 - 0x100), data);

        Assert.Equal(0x100UL, r.Bytes);
        Assert.Equal(new IommuFault(GpuName, new Iova(K4), true, IommuFaultReason.NotMapped), r.Fault);
        Assert.Equal(data[..0x100], Ram(_frames.Plus(K4 - 0x100), 0x100));
        Assert.Equal(new byte[0x100], Ram(_frames.Plus(K4), 0x100));
        Assert.Equal(1, _host.DmaFaults.Count);
    }

    [Fact]
    public void Read_CrossesIntoUnmapped_ReturnsFirstPartOnly()
    {
        Map(0, _frames, K4, IommuProt.ReadWrite);
        Assert.True(_host.Machine.Memory.Write(_frames.Plus(K4 - 2), [0x55, 0x66]));

        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(K4 - 2), 8);

        Assert.Equal(2UL, r.Bytes);
        Assert.Equal([0x55, 0x66], r.Data);
        Assert.Equal(IommuFaultReason.NotMapped, r.Fault!.Value.Reason);
    }

    [Fact]
    public void Write_DeviceWithoutDomain_FaultsNoDomain()
    {
        DeviceDmaResult r = DeviceDma.Write(_host, _nic, new Iova(0), [1]);

        Assert.Equal(new IommuFault("0000:02:00.0", new Iova(0), true, IommuFaultReason.NoDomain), r.Fault);
        Assert.Equal(0UL, r.Bytes);
        Assert.Equal(1, _host.DmaFaults.Count);
    }

    [Fact]
    public void Read_MdevDevice_FaultsNoIommu()
    {
        DeviceDmaResult r = DeviceDma.Read(_host, _host.Devices["vgpu"], new Iova(0), 4);

        Assert.Equal(IommuFaultReason.NoIommu, r.Fault!.Value.Reason);
    }

    [Fact]
    public void Write_ZeroBytes_CompletesWithoutFault()
    {
        DeviceDmaResult r = DeviceDma.Write(_host, _nic, new Iova(0), []);

        Assert.True(r.Ok);
        Assert.Equal(0UL, r.Bytes);
        Assert.Equal(0, _host.DmaFaults.Count);
    }

    [Fact]
    public void Write_IntoPeerBarWhileDecoding_ReachesBarContents()
    {
        _nic.Function!.SetMemoryEnable(true);
        Map(0x100000, NicBar.Base, 2 * K4, IommuProt.ReadWrite);
        byte[] data = Pattern(0x20, 0x30);

        DeviceDmaResult w = DeviceDma.Write(_host, _gpu, new Iova(0x100ff0), data);
        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(0x100ff0), 0x20);

        Assert.True(w.Ok);
        Assert.Equal(0x20UL, w.Bytes);
        byte[] bar = new byte[0x20];
        Assert.True(_nic.Function.TryReadBar(0, 0xff0, bar));
        Assert.Equal(data, bar);
        Assert.Equal(data, r.Data);
    }

    [Fact]
    public void Write_IntoPeerBarWithDecodeOff_IsUnsupportedRequestAndRecorded()
    {
        Map(0x100000, NicBar.Base, K4, IommuProt.ReadWrite);
        Assert.False(_nic.Function!.DecodesMemory);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(0x100008), [1, 2, 3, 4]);

        Assert.Equal(new IommuFault(GpuName, new Iova(0x100008), true, IommuFaultReason.UnsupportedRequest), r.Fault);
        Assert.Equal(0UL, r.Bytes);
        Assert.Equal([r.Fault!.Value], _host.DmaFaults.Snapshot());
        _nic.Function.SetMemoryEnable(true);
        byte[] bar = new byte[4];
        Assert.True(_nic.Function.TryReadBar(0, 8, bar));
        Assert.Equal(new byte[4], bar);
    }

    [Fact]
    public void Read_FromPeerBarInReset_IsUnsupportedRequest()
    {
        _nic.Function!.SetMemoryEnable(true);
        Map(0x100000, NicBar.Base, K4, IommuProt.ReadWrite);
        _nic.Function.BeginReset();

        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(0x100000), 8);

        Assert.Equal(IommuFaultReason.UnsupportedRequest, r.Fault!.Value.Reason);
        Assert.Empty(r.Data);
        _nic.Function.EndReset();
    }

    [Fact]
    public void Write_RamThenDisabledPeerBar_TransfersRamPartThenUnsupportedRequest()
    {
        Map(0, _frames, K4, IommuProt.ReadWrite);
        Map(K4, NicBar.Base, K4, IommuProt.ReadWrite);
        byte[] data = Pattern(0x20, 1);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(K4 - 0x10), data);

        Assert.Equal(0x10UL, r.Bytes);
        Assert.Equal(new IommuFault(GpuName, new Iova(K4), true, IommuFaultReason.UnsupportedRequest), r.Fault);
        Assert.Equal(data[..0x10], Ram(_frames.Plus(K4 - 0x10), 0x10));
    }

    [Fact]
    public void Write_UnsupportedRequestBeforeUnmappedIova_RecordsOnlyTheFirstFailure()
    {
        Map(0, NicBar.Base, K4, IommuProt.ReadWrite);

        DeviceDmaResult r = DeviceDma.Write(_host, _gpu, new Iova(0), new byte[2 * K4]);

        Assert.Equal(IommuFaultReason.UnsupportedRequest, r.Fault!.Value.Reason);
        Assert.Equal([r.Fault.Value], _host.DmaFaults.Snapshot());
    }

    [Fact]
    public void Read_MappedToNeitherRamNorBar_IsUnsupportedRequest()
    {
        // 512 MiB: past the 64 MiB of RAM, below the MMIO window that starts at 1 GiB.
        Map(0, new PhysAddr(512 * MiB), K4, IommuProt.ReadWrite);

        DeviceDmaResult r = DeviceDma.Read(_host, _gpu, new Iova(0x40), 4);

        Assert.Equal(new IommuFault(GpuName, new Iova(0x40), false, IommuFaultReason.UnsupportedRequest), r.Fault);
    }
}
