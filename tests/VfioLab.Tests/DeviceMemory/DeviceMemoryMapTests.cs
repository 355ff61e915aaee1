using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Vfio;
using static VfioLab.Tests.DeviceMemory.DeviceMemoryTestHost;

namespace VfioLab.Tests.DeviceMemory;

/// <summary>MAP_DMA of a vfio-pci BAR mmap (peer-to-peer set-up) in the seeds profile (the 2021 RFC, seed 003:
/// the pfn from the device, a device reference and release notifier, strict_mmio_maps) and in linux-6.18
/// (the page-table walk of spec §3.2, no reference): never charged, counted against dma_entry_limit, one
/// lookup per VMA or huge block.</summary>
public sealed class DeviceMemoryMapTests
{
    internal static readonly KernelSettings Linux618 = KernelSettings.Default with { Profile = KernelSettings.Linux618 };

    private const ulong BarIova = 1UL << 32;

    /// <summary>A container with the first GPU and the NIC; the GPU's device fd and its BAR0 mapped.</summary>
    internal static (DeviceMemoryTestHost T, int Container, int GpuFd, ulong Bar) GpuAndNic(KernelSettings? kernel = null)
    {
        var t = new DeviceMemoryTestHost(kernel);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        return (t, c, gpu, bar);
    }

    [Fact]
    public void MapDma_BarMmap_TranslatesToTheBarWithNoPinNoChargeAndHoldsTheDevice()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = GpuAndNic();
        VfioDevice gpu = t.Device("gpu").Vfio!;
        ulong avail = t.Backend(c).DmaAvail;

        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        Assert.Equal(t.BarPhys("gpu") + 0x5000, t.Translate("nic", BarIova + 0x5000));
        Assert.Equal(0UL, t.Process.LastMm.LockedVm);
        Assert.Equal(0UL, t.Host.Machine.Memory.TotalPins);
        Assert.Equal(avail - 1, t.Backend(c).DmaAvail);
        Assert.Equal((1, 1), (gpu.References, gpu.NotifierCount));
        Assert.Equal(1UL, t.Backend(c).PfnmapLookups);
        // The device's operation gave the pfns: the CPU page table was neither walked nor faulted.
        Assert.False(t.IsPresent(bar));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_BarMmapSeenByCpuAndPeer_BothSeeTheSameBytes()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = GpuAndNic();
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        Assert.Equal(0, t.Sys.WriteMemory(bar + 0x100, [0xca, 0xfe, 0xba, 0xbe]));
        DeviceDmaResult read = DeviceDma.Read(t.Host, t.Device("nic"), new Iova(BarIova + 0x100), 4);
        DeviceDmaResult write = DeviceDma.Write(t.Host, t.Device("nic"), new Iova(BarIova + 0x200), [1, 2, 3]);
        byte[] cpu = new byte[3];
        Assert.Equal(0, t.Sys.ReadMemory(bar + 0x200, cpu));

        Assert.True(read.Ok && write.Ok);
        Assert.Equal([0xca, 0xfe, 0xba, 0xbe], read.Data);
        Assert.Equal([1, 2, 3], cpu);
    }

    [Fact]
    public void Dma_PeerDecodeOff_IsAnUnsupportedRequestAndTheMappingStays()
    {
        (DeviceMemoryTestHost t, int c, int gpu, ulong bar) = GpuAndNic();
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));
        t.SetMemory(gpu, false);

        DeviceDmaResult r = DeviceDma.Write(t.Host, t.Device("nic"), new Iova(BarIova), [9]);

        Assert.Equal(VfioLab.Iommu.IommuFaultReason.UnsupportedRequest, r.Fault!.Value.Reason);
        Assert.Equal(0UL, r.Bytes);
        Assert.Single(t.Host.DmaFaults.Snapshot());
        Assert.Equal(t.BarPhys("gpu"), t.Translate("nic", BarIova));
        t.SetMemory(gpu, true);
        Assert.True(DeviceDma.Write(t.Host, t.Device("nic"), new Iova(BarIova), [9]).Ok);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_DecodeOff_SeedsMapsFromTheDevice_Linux618WalkFaultsEFAULT()
    {
        (DeviceMemoryTestHost seeds, int c1, int gpu1, ulong bar1) = GpuAndNic();
        (DeviceMemoryTestHost upstream, int c2, int gpu2, ulong bar2) = GpuAndNic(Linux618);
        seeds.SetMemory(gpu1, false);
        upstream.SetMemory(gpu2, false);

        Assert.Equal(0, seeds.Map(c1, BarIova, bar1, GpuBar0Size));
        Assert.Equal(Errno.EFAULT.AsReturn(), upstream.Map(c2, BarIova, bar2, GpuBar0Size));

        Assert.Equal(0UL, upstream.Backend(c2).MappingCount);
        Assert.Null(upstream.Translate("nic", BarIova));
        Assert.Empty(upstream.Violations());
    }

    [Fact]
    public void MapDma_OtherDriversPfnmap_StrictRefusesENODEVAndChangesNothing()
    {
        var t = new DeviceMemoryTestHost();
        (int c, _) = t.Container(GpuGroup);
        ulong va = (ulong)t.Process.Mm!.MmapOtherMmio(0, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, false, false,
            t.Host.Machine.AllocateMmioPfns(256));
        ulong avail = t.Backend(c).DmaAvail;

        Assert.Equal(Errno.ENODEV.AsReturn(), t.Map(c, BarIova, va, 1 * MiB));

        Assert.Equal((0UL, avail), (t.Backend(c).MappingCount, t.Backend(c).DmaAvail));
        Assert.Null(t.Translate("gpu", BarIova));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_OtherDriversPfnmap_NotStrictMapsUntrackedThroughTheWalk()
    {
        var t = new DeviceMemoryTestHost(KernelSettings.Default with { StrictMmioMaps = false });
        (int c, _) = t.Container(GpuGroup);
        Pfn first = t.Host.Machine.AllocateMmioPfns(256);
        ulong va = (ulong)t.Process.Mm!.MmapOtherMmio(0, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, false, false, first);

        Assert.Equal(0, t.Map(c, BarIova, va, 1 * MiB));

        Assert.Equal((first.Value << 12) + 0x1000, t.Translate("gpu", BarIova + 0x1000));
        Assert.Empty(t.Backend(c).Snapshot().DevicePfnmaps);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_ReadOnlyBarMmapWithWrite_ReturnsEFAULT_ReadOnlyMapSucceeds()
    {
        var t = new DeviceMemoryTestHost();
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = (ulong)t.MmapBar(gpu, 0, GpuBar0Size, prot: MemoryProtection.Read);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, BarIova, bar, GpuBar0Size));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0, t.Device("gpu").Vfio!.References);

        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size, DmaMapFlags.Read));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void UnmapDma_LastMappingOfTheDevice_DropsReferenceAndNotifierAtOnce()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = GpuAndNic();
        VfioDevice gpu = t.Device("gpu").Vfio!;
        Assert.Equal(0, t.Map(c, BarIova, bar, 4 * MiB));
        Assert.Equal(0, t.Map(c, BarIova + (4 * MiB), bar + (4 * MiB), 4 * MiB));
        Assert.Equal((1, 1), (gpu.References, gpu.NotifierCount));

        Assert.Equal((0, 4 * MiB), t.Unmap(c, BarIova, 4 * MiB));
        Assert.Equal((1, 1), (gpu.References, gpu.NotifierCount));
        Assert.Equal((0, 4 * MiB), t.Unmap(c, BarIova + (4 * MiB), 4 * MiB));

        Assert.Equal((0, 0), (gpu.References, gpu.NotifierCount));
        Assert.Equal(0, t.Host.Machine.Work.Pending);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_DmaEntryLimitReached_ReturnsENOSPCForABarToo()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = GpuAndNic(KernelSettings.Default with { DmaEntryLimit = 1 });
        Assert.Equal(0, t.Map(c, BarIova, bar, 4 * MiB));

        Assert.Equal(Errno.ENOSPC.AsReturn(), t.Map(c, BarIova + (4 * MiB), bar + (4 * MiB), 4 * MiB));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(1, t.Device("gpu").Vfio!.References);
    }

    [Fact]
    public void MapDma_Linux618_WalksThePageTableAndHoldsNothing()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = GpuAndNic(Linux618);

        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        Assert.Equal(t.BarPhys("gpu"), t.Translate("nic", BarIova));
        Assert.True(t.IsPresent(bar));
        Assert.Equal((0, 0), (t.Device("gpu").Vfio!.References, t.Device("gpu").Vfio!.NotifierCount));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void MapDma_HugeBar_OneLookupForTheWholeVmaInSeeds()
    {
        var t = new DeviceMemoryTestHost(gpuBar2Size: 128 * GiB);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 2, 128 * GiB);

        Assert.Equal(0, t.Map(c, 128 * GiB, bar, 128 * GiB));

        Assert.Equal(1UL, t.Backend(c).PfnmapLookups);
        Assert.Equal(t.BarPhys("gpu", 2) + (127 * GiB), t.Translate("nic", 255 * GiB));
        Assert.Equal(0UL, t.Process.LastMm.LockedVm);
    }

    [Fact]
    public void MapDma_Linux618AlignedVma_OneWalkPerHugeBlock()
    {
        var t = new DeviceMemoryTestHost(Linux618, gpuBar2Size: 4 * GiB);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        long bar = t.Sys.Mmap(64 * GiB, 4 * GiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, gpu, VfioPci.IndexToOffset(2));
        Assert.Equal((long)(64 * GiB), bar);

        Assert.Equal(0, t.Map(c, 64 * GiB, (ulong)bar, 4 * GiB));

        // One PUD block per lookup: four 1 GiB blocks.
        Assert.Equal(4UL, t.Backend(c).PfnmapLookups);
        Assert.Equal(t.BarPhys("gpu", 2) + (3 * GiB), t.Translate("nic", 67 * GiB));
    }
}
