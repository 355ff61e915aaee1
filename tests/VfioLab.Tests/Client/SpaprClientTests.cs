using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Host;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;
using VfioLab.Simulation;

namespace VfioLab.Tests.Client;

/// <summary>The typed client on a POWER host (sPAPR TCE backend, 64 KiB pages): QEMU's v2 flow through the client,
/// and the kernel's positive non-zero answers surfacing as errors.</summary>
public sealed class SpaprClientTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    private static (SimulatedHost Host, Process Process) PowerHost(string memlock = "2GiB")
    {
        string text = $$"""
            vfiolab: 1
            name: client-spapr
            host: { memory: 4GiB, page_size: 64KiB, iommu: spapr-tce }
            devices:
              - { name: gpu, address: "0000:01:00.0", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 16MiB } ] }
            processes:
              - { name: qemu, memlock: {{memlock}} }
            steps: []
            """;
        VfioLab.Lab.LabHost lab = ScenarioHostFactory.Build(ScenarioParser.Parse(text, "spapr.yaml"));
        return (lab.Simulated, lab.Process("qemu").Process);
    }

    private static ulong Mmap(ISyscallSurface sys, ulong size)
    {
        long a = sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(a > 0);
        return (ulong)a;
    }

    [Fact]
    public void SelectIommu_PowerHost_PicksSpaprV2_AndReportsDdw()
    {
        (_, Process qemu) = PowerHost();
        using Container container = Container.Open(qemu.Syscalls);
        Assert.False(container.CheckExtension(VfioExtension.Type1v2Iommu));
        using Group group = Group.Open(qemu.Syscalls, 1);
        group.SetContainer(container);
        Assert.Equal(VfioExtension.SpaprTceV2Iommu, container.SelectIommu());
        SpaprInfo info = container.GetSpaprInfo();
        Assert.Equal(SpaprInfoFlags.Ddw, info.Flags);
        Assert.Equal(0u, info.Dma32WindowStart);
        Assert.Equal((uint)(2 * GiB), info.Dma32WindowSize);
        Assert.Equal(2u, info.MaxDynamicWindows);
        Assert.NotEqual(0UL, info.DdwPageSizes & (64 * KiB));
    }

    [Fact]
    public void V2Flow_RegisterCreateMapDmaUnmap_ThroughTheClient()
    {
        (SimulatedHost host, Process qemu) = PowerHost();
        using Container container = Container.Open(qemu.Syscalls);
        using Group group = Group.Open(qemu.Syscalls, 1);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.SpaprTceV2Iommu);
        ulong ram = Mmap(qemu.Syscalls, 256 * MiB);

        container.RegisterMemory(ram, 256 * MiB);
        Assert.Equal(Errno.EBUSY, Assert.Throws<VfioException>(() => container.RegisterMemory(ram, 256 * MiB)).Errno);
        container.RemoveWindow(0);
        ulong small = container.CreateWindow(16, 1 * GiB);
        ulong window = container.CreateWindow(16, 64 * GiB, levels: 2);
        Assert.Equal(0UL, small);
        Assert.Equal(1UL << 59, window);
        Assert.Equal(Errno.ENOSPC, Assert.Throws<VfioException>(() => container.CreateWindow(16, 1 * GiB)).Errno);

        container.MapDma(window, ram, 256 * MiB);
        Assert.True(DeviceDma.Write(host, host.Devices["gpu"], new VfioLab.Addressing.Iova(window + 0x10000), [0xca, 0xfe]).Ok);
        byte[] seen = new byte[2];
        Assert.Equal(0, qemu.Syscalls.ReadMemory(ram + 0x10000, seen));
        Assert.Equal(new byte[] { 0xca, 0xfe }, seen);

        // The sPAPR backend writes no size back: the client reports the size asked for.
        Assert.Equal(256 * MiB, container.UnmapDma(window, 256 * MiB));
        container.UnregisterMemory(ram, 256 * MiB);
        Assert.Equal(Errno.ENOENT, Assert.Throws<VfioException>(() => container.UnregisterMemory(ram, 256 * MiB)).Errno);
        container.RemoveWindow(window);
    }

    [Fact]
    public void MapDma_IovaOffATcePage_KernelAnswersOne_ClientThrows()
    {
        // v1: ENABLE charges the whole 2 GiB window, the first MAP the default table's memory on top.
        (_, Process qemu) = PowerHost(memlock: "3GiB");
        using Container container = Container.Open(qemu.Syscalls);
        using Group group = Group.Open(qemu.Syscalls, 1);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.SpaprTceIommu);
        container.Enable();
        ulong ram = Mmap(qemu.Syscalls, 1 * MiB);

        VfioException e = Assert.Throws<VfioException>(() => container.MapDma(0x800, ram, 64 * KiB));
        Assert.Equal(Errno.None, e.Errno);
        Assert.Contains("answered 1 where only 0 means success", e.Message, StringComparison.Ordinal);
        container.MapDma(0, ram, 64 * KiB);
        Assert.Equal(Errno.EBUSY, Assert.Throws<VfioException>(container.Enable).Errno);
        container.Disable();
    }
}
