using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Examples.Tests;

/// <summary>
/// Peer-to-peer DMA as a VMM sets it up: the GPU's BAR2 is mmapped through its device fd and DMA-mapped into the
/// container at the guest-physical address the guest gave the BAR, so the NIC's DMA to that IOVA lands in the GPU's
/// memory. A BAR is device memory: never pinned, never charged to <c>locked_vm</c>, but one DMA slot. Runs under
/// both kernel profiles: today's seeds design and upstream v6.18 agree on all of it but what happens when the host takes the GPU away.
/// </summary>
public sealed class PeerToPeerTests
{
    private const ulong Ram = 64 * Size.MiB;
    private const ulong Bar2 = 256 * Size.MiB;
    private const ulong Bar2Iova = 0x1_0000_0000;
    private const uint Bar2Index = 2;

    private sealed record Vm(LabHost Host, LabProcess Qemu, Container Container, Device Gpu, ulong Bar);

    private static Vm Boot(string kernel)
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(4 * Size.GiB)
            .WithKernel(kernel)
            .AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 16 * Size.MiB).Bar(2, Bar2, prefetchable: true).Group(1))
            .AddPciDevice("nic", "0000:03:00.0", d => d.Bar(0, Size.MiB).Group(3))
            .AddProcess("qemu", memlockBytes: Size.GiB)
            .Build();
        LabProcess qemu = host.Process("qemu");
        var container = Container.Open(qemu.Syscalls);
        Group gpuGroup = Group.Open(qemu.Syscalls, 1);
        gpuGroup.SetContainer(container);
        Group.Open(qemu.Syscalls, 3).SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        Device gpu = gpuGroup.OpenDevice("0000:01:00.0");
        long ram = qemu.Syscalls.Mmap(0, Ram, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB, -1, 0);
        Assert.True(ram > 0);
        container.MapDma(0, (ulong)ram, Ram);
        ulong bar = gpu.MapRegion(Bar2Index, 0, Bar2);
        container.MapDma(Bar2Iova, bar, Bar2);
        return new Vm(host, qemu, container, gpu, bar);
    }

    [Theory]
    [InlineData(KernelProfiles.Seeds)]
    [InlineData(KernelProfiles.Linux618)]
    public void MapDma_GpuBar_TakesASlotButIsNeitherPinnedNorCharged(string kernel)
    {
        Vm vm = Boot(kernel);

        LabContainer c = vm.Qemu.ContainerOf(vm.Container.Fd)!;
        Assert.Equal(Ram, vm.Qemu.LockedVmBytes);
        Assert.Equal(Ram / Size.Page, vm.Host.PinnedPages);
        Assert.Equal(65533UL, c.DmaAvail);
        Assert.Equal(65533U, vm.Container.GetIommuInfo().DmaAvail);
        LabMapping barMapping = Assert.Single(c.Mappings, m => m.Iova == Bar2Iova);
        Assert.Equal((Bar2, vm.Bar, 0L), (barMapping.Size, barMapping.Vaddr, barMapping.LockedPages));
        Assert.Equal(Ram / Size.Page, (ulong)Assert.Single(c.Mappings, m => m.Iova == 0).LockedPages);
    }

    [Theory]
    [InlineData(KernelProfiles.Seeds)]
    [InlineData(KernelProfiles.Linux618)]
    public void DmaWrite_NicToGpuBarIova_LandsInTheBar(string kernel)
    {
        Vm vm = Boot(kernel);

        LabDmaResult write = vm.Host.Device("nic").DmaWrite(Bar2Iova + 0x1000, [0xc0, 0xff, 0xee]);

        Assert.True(write.Ok);
        Assert.Equal(3UL, write.Bytes);
        byte[] viaPread = new byte[3];
        Assert.Equal(3, vm.Gpu.ReadRegion(Bar2Index, 0x1000, viaPread));
        Assert.Equal(new byte[] { 0xc0, 0xff, 0xee }, viaPread);
        byte[] viaMmap = new byte[3];
        Assert.Equal(0, vm.Qemu.Syscalls.ReadMemory(vm.Bar + 0x1000, viaMmap));
        Assert.Equal(new byte[] { 0xc0, 0xff, 0xee }, viaMmap);
        Assert.Equal(Ram, vm.Qemu.LockedVmBytes);
        Assert.Empty(vm.Host.CheckInvariants());
    }

    [Theory]
    [InlineData(KernelProfiles.Seeds)]
    [InlineData(KernelProfiles.Linux618)]
    public void DmaWrite_GpuMemoryDecodeOff_IsUnsupportedRequestAndMappingStays(string kernel)
    {
        Vm vm = Boot(kernel);

        vm.Gpu.SetMemoryEnable(false);
        LabDmaResult refused = vm.Host.Device("nic").DmaWrite(Bar2Iova, [0x01]);
        int cpuRead = vm.Qemu.Syscalls.ReadMemory(vm.Bar, new byte[4]);
        ulong mappingsWhileOff = vm.Qemu.ContainerOf(vm.Container.Fd)!.MappingCount;
        vm.Gpu.SetMemoryEnable(true);
        LabDmaResult accepted = vm.Host.Device("nic").DmaWrite(Bar2Iova, [0x01]);

        // The IOMMU still translates the IOVA; the BAR, not decoding memory, answers with an unsupported request.
        Assert.Equal((DmaFaultReason?)DmaFaultReason.UnsupportedRequest, refused.FaultReason);
        Assert.Equal(Bar2Iova, refused.FaultIova);
        Assert.Equal(0UL, refused.Bytes);
        // The CPU's access to the zapped mmap is a SIGBUS, which the surface reports as EIO.
        Assert.Equal(Errno.EIO.AsReturn(), cpuRead);
        Assert.Equal(2UL, mappingsWhileOff);
        Assert.True(accepted.Ok);
        Assert.Empty(vm.Host.CheckInvariants());
    }

    [Fact]
    public void Release_GpuUnderSeeds_RemovesTheBarMappingAndTheNicFaults()
    {
        Vm vm = Boot(KernelProfiles.Seeds);

        int closed = vm.Host.Device("gpu").Release();

        // The release notifier the seeds design registers for a BAR mapping removes it at once.
        Assert.True(closed > 0);
        Assert.Equal(1UL, vm.Qemu.ContainerOf(vm.Container.Fd)!.MappingCount);
        Assert.Equal((DmaFaultReason?)DmaFaultReason.NotMapped, vm.Host.Device("nic").DmaWrite(Bar2Iova, [0x5b]).FaultReason);
        Assert.Equal(1, vm.Host.RunDeferredWork());
        Assert.Empty(vm.Host.CheckInvariants());
    }

    [Fact]
    public void Release_GpuUnderLinux618_LeavesAStaleTranslationTheCheckerReports()
    {
        Vm vm = Boot(KernelProfiles.Linux618);

        vm.Host.Device("gpu").Release();

        // Upstream type1 holds no device reference for a PFNMAP mapping: the NIC still reaches the released BAR
        // until the VMM unmaps it. The checker names the known limitation.
        Assert.Equal(2UL, vm.Qemu.ContainerOf(vm.Container.Fd)!.MappingCount);
        Assert.True(vm.Host.Device("nic").DmaWrite(Bar2Iova, [0x5b]).Ok);
        Assert.Equal([InvariantNames.NoTranslationToReleasedDevice], vm.Host.CheckInvariants().Select(v => v.Invariant).Distinct());
        Assert.Equal(Bar2, vm.Container.UnmapDma(Bar2Iova, Bar2));
        Assert.Empty(vm.Host.CheckInvariants());
    }
}
