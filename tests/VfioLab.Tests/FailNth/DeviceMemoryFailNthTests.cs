using VfioLab.Abi;
using VfioLab.Simulation;
using VfioLab.Tests.DeviceMemory;
using VfioLab.Vfio;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// Fail-nth around a GPU whose BAR0 mmap is DMA-mapped for a NIC (seeds profile: type1 holds a device reference
/// and listens on the device's release notifier while it maps the device's memory). MAP of the BAR mmap rolls back
/// exactly, the device reference and the notifier included. Every way the device or its mappings go away — forced
/// release, unplug, the last close through munmap or close, exit, exec, UNMAP, UNSET_CONTAINER and the deferred
/// work the release queues — is teardown, which never fails (STYLE.md 11): each sweep asserts zero failure points
/// (a zero asserted, not skipped) and then the teardown's effect.
/// </summary>
public sealed class DeviceMemoryFailNthTests
{
    private const ulong BarIova = 1UL << 32;
    private const ulong RamIova = 1UL << 20;
    private const ulong MiB = DeviceMemoryTestHost.MiB;

    // The GPU's BAR0 mmap and 2 MiB of pinned RAM mapped in one container with the NIC.
    private static (DeviceMemoryTestHost T, int Container, int GpuFd, ulong Bar) Mapped()
    {
        (DeviceMemoryTestHost t, int c, int gpuFd, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        ulong ram = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, RamIova, ram, 2 * MiB));
        Assert.Equal(0, t.Map(c, BarIova, bar, DeviceMemoryTestHost.GpuBar0Size));
        return (t, c, gpuFd, bar);
    }

    [Fact]
    public void MapDma_BarMmapNthStepFails_ReturnsInjectedErrnoAndDropsTheDeviceReference()
    {
        // vaddr_get_pfns tries GUP first and, on any error, looks the address up in a VM_PFNMAP VMA: a failed
        // pin of the BAR mmap is absorbed (the MAP succeeds), undone by UNMAP. dma_alloc and iommu_map fail it.
        (DeviceMemoryTestHost t, int c, _, ulong bar) = DeviceMemoryMapTests.GpuAndNic();
        VfioDevice gpu = t.Device("gpu").Vfio!;
        int absorbed = 0;

        int points = FailNthSweep.Run(t.Host, () =>
        {
            long ret = t.Map(c, BarIova, bar, DeviceMemoryTestHost.GpuBar0Size);
            if (ret < 0)
            {
                Assert.Equal((0, 0), (gpu.References, gpu.NotifierCount));
            }
            return ret;
        }, [Errno.ENOMEM], undo: () =>
        {
            absorbed++;
            Assert.Equal((0L, DeviceMemoryTestHost.GpuBar0Size), t.Unmap(c, BarIova, DeviceMemoryTestHost.GpuBar0Size));
            t.Host.Machine.Work.RunAll();
        });

        Assert.Equal((3, 1), (points, absorbed));   // dma_alloc, pin (absorbed), iommu_map
        Assert.Equal((1, 1), (gpu.References, gpu.NotifierCount));
        Assert.Empty(t.Violations());
    }

    [Theory]
    [InlineData("release")]
    [InlineData("unplug")]
    [InlineData("close-then-munmap")]
    [InlineData("munmap-then-close")]
    [InlineData("exit")]
    public void Release_DmaMappedBar_HasNoFailurePointAndRemovesTheBarMapping(string kind)
    {
        (DeviceMemoryTestHost t, int c, int gpuFd, ulong bar) = Mapped();
        VfioDevice gpu = t.Device("gpu").Vfio!;
        var backend = t.Backend(c);
        if (kind == "close-then-munmap")
        {
            Assert.Equal(0, t.Sys.Close(gpuFd));
        }
        else if (kind == "munmap-then-close")
        {
            Assert.Equal(0, t.Sys.Munmap(bar, DeviceMemoryTestHost.GpuBar0Size));
        }

        int points = FailNthSweep.Run(t.Host, () => kind switch
        {
            "release" => SimulatedHostActions.ReleaseDevice(t.Host, t.Device("gpu")),
            "unplug" => SimulatedHostActions.Unplug(t.Host, t.Device("gpu")),
            "close-then-munmap" => t.Sys.Munmap(bar, DeviceMemoryTestHost.GpuBar0Size),
            "munmap-then-close" => t.Sys.Close(gpuFd),
            _ => Exit(t),
        }, []);

        Assert.Equal(0, points);
        Assert.Equal(0, gpu.OpenCount);
        Assert.Null(t.Translate("nic", BarIova));
        Assert.Equal(kind == "exit" ? 0UL : 1UL, backend.MappingCount);
        Assert.Empty(t.Violations());

        // The release queued the notifier's unregistration and the reference drop: also teardown.
        int deferred = FailNthSweep.Run(t.Host, () => t.Host.Machine.Work.RunAll(), []);

        Assert.Equal(0, deferred);
        Assert.Equal((0, 0), (gpu.References, gpu.NotifierCount));
    }

    [Theory]
    [InlineData("unmap-bar")]
    [InlineData("unmap-all")]
    [InlineData("unset-container")]
    [InlineData("exec")]
    public void Teardown_WithDmaMappedBar_HasNoFailurePoint(string kind)
    {
        (DeviceMemoryTestHost t, int c, _, _) = Mapped();
        var backend = t.Backend(c);
        int nicGroupFd = GroupFd(t, DeviceMemoryTestHost.NicGroup);

        int points = FailNthSweep.Run(t.Host, () => kind switch
        {
            "unmap-bar" => t.Unmap(c, BarIova, DeviceMemoryTestHost.GpuBar0Size).Ret,
            "unmap-all" => Concurrency.UserIoctls.Unmap(t.Sys, c, 0, 0, DmaUnmapFlags.All).Ret,
            "unset-container" => t.Sys.Ioctl(nicGroupFd, VfioIoctl.GroupUnsetContainer, 0),
            _ => t.Process.Exec().AsReturn(),
        }, []);

        Assert.Equal(0, points);
        Assert.Equal(kind switch { "unmap-bar" => 1UL, "unmap-all" => 0UL, _ => 2UL }, backend.MappingCount);
        Assert.Empty(t.Violations());
    }

    private static int GroupFd(DeviceMemoryTestHost t, int number)
    {
        foreach (int fd in t.Process.Fds.Snapshot())
        {
            if (t.Process.Fds.TryGet(fd, out VfioLab.Host.OpenFile file))
            {
                bool match = file.Operations is VfioGroupFile g && g.Group.Number == number;
                file.Put();
                if (match)
                {
                    return fd;
                }
            }
        }
        throw new InvalidOperationException($"no fd of group {number}");
    }

    private static long Exit(DeviceMemoryTestHost t)
    {
        t.Process.Exit();
        return 0;
    }
}
