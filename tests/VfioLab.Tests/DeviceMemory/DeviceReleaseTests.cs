using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Vfio;
using static VfioLab.Tests.DeviceMemory.DeviceMemoryTestHost;

namespace VfioLab.Tests.DeviceMemory;

/// <summary>Release of a device whose memory is DMA-mapped: in the seeds profile the release notifier removes
/// every mapping of that memory from every container at once and queues the notifier's unregistration and
/// the reference drop (RFC 10/10's unregister_device_bg); linux-6.18 keeps the stale translation, which the
/// checker reports as the known upstream limitation.</summary>
public sealed class DeviceReleaseTests
{
    private const ulong BarIova = 1UL << 32;
    private const ulong RamIova = 1UL << 20;

    [Fact]
    public void ForcedRelease_Seeds_RemovesTheBarMappingNowAndDefersTheUnregistration()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        VfioDevice gpu = t.Device("gpu").Vfio!;
        ulong ram = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, RamIova, ram, 2 * MiB));
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));
        ulong avail = t.Backend(c).DmaAvail;

        SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu"));

        Assert.Equal(0, gpu.OpenCount);
        Assert.Null(t.Translate("nic", BarIova));
        Assert.NotNull(t.Translate("nic", RamIova));
        Assert.Equal((1UL, avail + 1), (t.Backend(c).MappingCount, t.Backend(c).DmaAvail));
        Assert.Equal((1, 1, 1), (gpu.References, gpu.NotifierCount, t.Host.Machine.Work.Pending));
        Assert.Empty(t.Violations());

        Assert.Equal(1, t.Host.Machine.Work.RunAll());

        Assert.Equal((0, 0), (gpu.References, gpu.NotifierCount));
        Assert.Empty(t.Backend(c).Snapshot().DevicePfnmaps);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void LastCloseAfterMunmap_Seeds_ReleasesTheDeviceAndItsMappings()
    {
        (DeviceMemoryTestHost t, int c, int gpuFd, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        Assert.Equal(0, t.Sys.Close(gpuFd));
        Assert.NotNull(t.Translate("nic", BarIova));    // the mmap still holds the device file
        Assert.Equal(0, t.Sys.Munmap(bar, GpuBar0Size));

        Assert.Null(t.Translate("nic", BarIova));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Empty(t.Violations());
        t.Host.Machine.Work.RunAll();
        Assert.Equal(0, t.Device("gpu").Vfio!.References);
    }

    [Fact]
    public void ForcedRelease_Seeds_RemovesMappingsInEveryContainer()
    {
        var t = new DeviceMemoryTestHost();
        (int c1, int[] g1) = t.Container(GpuGroup, NicGroup);
        (int c2, _) = t.Container(Gpu2Group);
        int gpu = t.DeviceFd(g1[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        Assert.Equal(0, t.Map(c1, BarIova, bar, GpuBar0Size));
        Assert.Equal(0, t.Map(c2, BarIova, bar, GpuBar0Size));
        Assert.Equal(2, t.Device("gpu").Vfio!.References);

        SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu"));

        Assert.Null(t.Translate("nic", BarIova));
        Assert.Null(t.Translate("gpu2", BarIova));
        Assert.Equal(2, t.Host.Machine.Work.RunAll());
        Assert.Equal(0, t.Device("gpu").Vfio!.References);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void ForcedRelease_Linux618_KeepsTheStaleTranslationReportedAsTheKnownLimitation()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic(DeviceMemoryMapTests.Linux618);
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu"));

        Assert.Equal(t.BarPhys("gpu"), t.Translate("nic", BarIova));
        InvariantViolation v = Assert.Single(t.Checker.Check());
        Assert.Equal("no-translation-to-released-device", v.Invariant);
        Assert.Contains("known upstream limitation", v.Message, StringComparison.Ordinal);
        Assert.Equal(0, t.Host.Machine.Work.Pending);
    }

    [Fact]
    public void Unplug_Linux618_PeerDmaThroughTheStaleEntryIsAnUnsupportedRequest_SeedsIsNotMapped()
    {
        (DeviceMemoryTestHost up, int c1, _, ulong bar1) = DeviceMemoryMapTests.GpuAndNic(DeviceMemoryMapTests.Linux618);
        (DeviceMemoryTestHost seeds, int c2, _, ulong bar2) = DeviceMemoryMapTests.GpuAndNic();
        Assert.Equal(0, up.Map(c1, BarIova, bar1, GpuBar0Size));
        Assert.Equal(0, seeds.Map(c2, BarIova, bar2, GpuBar0Size));

        SimulatedHostActions.Unplug(up.Host, up.Device("gpu"));
        SimulatedHostActions.Unplug(seeds.Host, seeds.Device("gpu"));

        DeviceDmaResult stale = DeviceDma.Write(up.Host, up.Device("nic"), new Iova(BarIova), [1]);
        DeviceDmaResult clean = DeviceDma.Write(seeds.Host, seeds.Device("nic"), new Iova(BarIova), [1]);
        Assert.Equal(IommuFaultReason.UnsupportedRequest, stale.Fault!.Value.Reason);
        Assert.Equal(IommuFaultReason.NotMapped, clean.Fault!.Value.Reason);
        Assert.Equal(["no-translation-to-released-device"], up.Violations());
        Assert.Empty(seeds.Violations());
    }

    [Fact]
    public void MapDma_VmaLeftByAForcedRelease_ReturnsEFAULT()
    {
        var t = new DeviceMemoryTestHost();
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu"));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, BarIova, bar, GpuBar0Size));

        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0, t.Device("gpu").Vfio!.References);
    }

    [Fact]
    public void ReleaseNotifierIgnored_Seeds_BreaksOnlyNoTranslationToReleasedDevice()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));
        t.Backend(c).TestHooks.IgnoreDeviceReleaseForTest(t.Device("gpu").Vfio!);

        SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu"));

        Assert.Equal(["no-translation-to-released-device"], t.Violations());
    }

    [Fact]
    public void DeviceHoldDropped_Seeds_BreaksOnlyPfnmapDeviceReferenced()
    {
        (DeviceMemoryTestHost t, int c, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        Assert.Equal(0, t.Map(c, BarIova, bar, GpuBar0Size));

        t.Backend(c).TestHooks.DropDeviceHoldForTest(t.Device("gpu").Vfio!);

        Assert.Equal(["pfnmap-device-referenced"], t.Violations().Distinct());
    }

    [Fact]
    public void DecodeClearedBehindVfioPci_BreaksOnlyNoCpuMappingOfDisabledBar()
    {
        (DeviceMemoryTestHost t, _, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));

        // A config write that bypasses vfio-pci (setpci on the host): nothing zaps the CPU mapping.
        t.Function(DeviceMemoryTestHost.Gpu).SetMemoryEnable(false);

        Assert.Equal(["no-cpu-mapping-of-disabled-bar"], t.Violations());
    }
}
