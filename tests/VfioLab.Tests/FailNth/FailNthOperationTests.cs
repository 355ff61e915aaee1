using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Tests.Concurrency;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// Fail-nth sweeps over the multi-step operations beyond MAP, attach, SET_IOMMU, dirty START and
/// pin_pages (whose sweeps live in Type1/ and Mdev/): each failure point returns the injected errno and
/// leaves the whole VFIO state digest and the free frames exactly as before. Operations with no fallible
/// internal step (teardown never fails, STYLE.md 11) are swept too, asserting zero failure points, so a
/// fault site added to them later fails here until its rollback is tested.
/// </summary>
public sealed class FailNthOperationTests
{
    private const ulong KiB = StressRig.KiB;
    private const ulong MiB = StressRig.MiB;
    private const ulong Iova = 1 * StressRig.GiB;

    private static (StressRig Rig, ulong Vaddr) Mapped(ulong size = 256 * KiB)
    {
        var rig = new StressRig();
        ulong vaddr = rig.Anonymous(size);
        Assert.Equal(0, UserIoctls.Map(rig.Sys, rig.Container, Iova, vaddr, size));
        return (rig, vaddr);
    }

    [Fact]
    public void Fork_NthAllocFails_ReturnsENOMEMAndLeavesNoChild()
    {
        // Pinned pages are copied for the child at fork: one allocation per physically contiguous run.
        (StressRig rig, _) = Mapped();
        int processes = rig.Host.Machine.Processes.Count;
        Process? child = null;

        int points = FailNthSweep.Run(rig.Host, () => rig.Process.TryFork(out child).AsReturn(), [Errno.ENOMEM], FaultSite.Alloc);

        Assert.True(points > 0);
        Assert.Equal(processes + 1, rig.Host.Machine.Processes.Count);
        child!.Exit();
        Assert.Equal(0UL, child.LastMm.LockedVm);
    }

    [Fact]
    public void MapDma_UnpopulatedMemoryNthStepFails_ReturnsInjectedErrnoAndRollsBack()
    {
        // GUP faults the pages in (alloc) before pinning them; Linux keeps the faulted-in pages after a failed
        // MAP, so only the VFIO state (and no pin, charge or mapping) must be as before.
        var rig = new StressRig();
        long a = rig.Sys.Mmap(0, 512 * KiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(a > 0);

        int points = FailNthSweep.Run(rig.Host, () => UserIoctls.Map(rig.Sys, rig.Container, Iova, (ulong)a, 512 * KiB),
            [Errno.ENOMEM, Errno.EINTR], framesExact: false);

        Assert.True(points > 0);
        Assert.Equal(1UL, rig.Backend.MappingCount);
    }

    [Fact]
    public void SetContainer_AttachWithReplayNthStepFails_ReturnsInjectedErrnoAndRollsBack()
    {
        // The GPU slot leaves the container, a mapping is made, then the GPU's group comes back: a new domain
        // is allocated, attached, and every mapping replayed into it (iommu_map). A failed move into the audio
        // function's compatible domain is absorbed, as in Linux: the group keeps its new domain; undone by UNSET.
        var rig = new StressRig();
        Assert.Equal(0, rig.Sys.Close(rig.GpuFd));
        Assert.Equal(0, rig.Sys.Close(rig.AudioFd));
        Assert.Equal(0, rig.Sys.Munmap(rig.BarVaddr, StressRig.BarMapSize));
        Assert.Equal(0, rig.Sys.Ioctl(rig.GpuGroupFd, VfioIoctl.GroupUnsetContainer, 0));
        ulong vaddr = rig.Anonymous(256 * KiB);
        Assert.Equal(0, UserIoctls.Map(rig.Sys, rig.Container, Iova, vaddr, 256 * KiB));
        byte[] fd = BitConverter.GetBytes(rig.Container);

        int points = FailNthSweep.Run(rig.Host, () => rig.Sys.Ioctl(rig.GpuGroupFd, VfioIoctl.GroupSetContainer, fd), [Errno.ENOMEM, Errno.EINTR, Errno.EIO],
            undo: () => Assert.Equal(0, rig.Sys.Ioctl(rig.GpuGroupFd, VfioIoctl.GroupUnsetContainer, 0)));

        Assert.True(points > 0);
        Assert.NotNull(rig.Host.IommuGroups[StressRig.GpuGroup].Domain);
    }

    [Fact]
    public void SetContainer_MdevGroupEntryAllocFails_ReturnsENOMEMAndAttachesNothing()
    {
        // An emulated group's attach allocates its vfio_iommu_group and nothing else (no domain, no replay).
        var rig = new StressRig();
        Assert.Equal(0, rig.Sys.Close(rig.MdevFd));
        Assert.Equal(0, rig.Sys.Ioctl(rig.MdevGroupFd, VfioIoctl.GroupUnsetContainer, 0));
        byte[] fd = BitConverter.GetBytes(rig.Container);

        int points = FailNthSweep.Run(rig.Host, () => rig.Sys.Ioctl(rig.MdevGroupFd, VfioIoctl.GroupSetContainer, fd), [Errno.ENOMEM]);

        Assert.Equal(1, points);
        Assert.Single(rig.Backend.Snapshot().EmulatedGroups);
    }

    [Fact]
    public void DirtyStop_HasNoFailurePoint()
    {
        (StressRig rig, _) = Mapped();
        Assert.Equal(0, UserIoctls.Dirty(rig.Sys, rig.Container, DirtyPagesFlags.Start));

        int points = FailNthSweep.Run(rig.Host, () => UserIoctls.Dirty(rig.Sys, rig.Container, DirtyPagesFlags.Stop), []);

        Assert.Equal(0, points);
        Assert.False(rig.Backend.Snapshot().DirtyTracking);
    }

    [Fact]
    public void UnpinPages_HasNoFailurePoint()
    {
        (StressRig rig, _) = Mapped();
        var pfns = new VfioLab.Addressing.Pfn[4];
        Assert.Equal(4, rig.Driver.PinPages(rig.Mdev, Iova, 4, IommuProt.Read | IommuProt.Write, pfns));

        int points = FailNthSweep.Run(rig.Host, () => rig.Driver.UnpinPages(rig.Mdev, Iova, 4) ? 0 : Errno.EINVAL.AsReturn(), []);

        Assert.Equal(0, points);
        Assert.Equal(0UL, rig.Driver.PinsHeld);
    }

    [Fact]
    public void CloseMdev_WithPinsHeld_HasNoFailurePointAndReleasesThePins()
    {
        // The vendor driver's close_device unpins everything it holds, then the core unregisters the device.
        (StressRig rig, _) = Mapped();
        var pfns = new VfioLab.Addressing.Pfn[4];
        Assert.Equal(4, rig.Driver.PinPages(rig.Mdev, Iova, 4, IommuProt.Read | IommuProt.Write, pfns));
        int registered = rig.Backend.Snapshot().RegisteredDevices;

        int points = FailNthSweep.Run(rig.Host, () => rig.Sys.Close(rig.MdevFd), []);

        Assert.Equal(0, points);
        Assert.Equal((0UL, 0, registered - 1), (rig.Driver.PinsHeld, rig.Mdev.OpenCount, rig.Backend.Snapshot().RegisteredDevices));
    }

    [Fact]
    public void DmaRw_OnPinnedMapping_HasNoFailurePoint()
    {
        // The mapping's pages are pinned by MAP, so vfio_dma_rw's copy never faults: no failure point.
        (StressRig rig, _) = Mapped();

        int points = FailNthSweep.Run(rig.Host, () => (long)-(int)MdevVendorDriver.DmaRw(rig.Mdev, Iova + 0x1000, new byte[64], write: true, rig.Process), [Errno.EFAULT]);

        Assert.Equal(0, points);
    }

    [Fact]
    public void UnmapDma_WithDirtyBitmap_HasNoFailurePoint()
    {
        // Teardown never fails: unmapping, unpinning and un-charging have no fallible internal step; only the
        // user's bitmap copy can fail (EFAULT, not rolled back: Type1/DirtyTrackingTests.Unmap, spec §3.6).
        (StressRig rig, _) = Mapped();
        ulong bitmap = rig.Anonymous(rig.PageSize);
        Assert.Equal(0, UserIoctls.Dirty(rig.Sys, rig.Container, DirtyPagesFlags.Start));

        int points = FailNthSweep.Run(rig.Host, () => UserIoctls.UnmapWithBitmap(rig.Sys, rig.Container, Iova, 256 * KiB, rig.PageSize, bitmap, 8).Ret, []);

        Assert.Equal(0, points);
        Assert.Equal(0UL, rig.Backend.MappingCount);
    }

    [Fact]
    public void GetDirtyBitmap_HasNoFailurePoint()
    {
        (StressRig rig, _) = Mapped();
        ulong bitmap = rig.Anonymous(rig.PageSize);
        Assert.Equal(0, UserIoctls.Dirty(rig.Sys, rig.Container, DirtyPagesFlags.Start));

        int points = FailNthSweep.Run(rig.Host, () => UserIoctls.GetBitmap(rig.Sys, rig.Container, Iova, 256 * KiB, rig.PageSize, bitmap, 8), []);

        Assert.Equal(0, points);
    }

    [Fact]
    public void VaddrUpdate_HasNoFailurePoint()
    {
        // VFIO_DMA_UNMAP_FLAG_VADDR then VFIO_DMA_MAP_FLAG_VADDR: both only edit the mapping (spec §3.4).
        var rig = new StressRig(VfioLab.Simulation.KernelSettings.Default);
        Assert.Equal(0, rig.Sys.Close(rig.MdevFd));
        Assert.Equal(0, rig.Sys.Ioctl(rig.MdevGroupFd, VfioIoctl.GroupUnsetContainer, 0));
        ulong vaddr = rig.Anonymous(256 * KiB);
        Assert.Equal(0, UserIoctls.Map(rig.Sys, rig.Container, Iova, vaddr, 256 * KiB));

        int invalidate = FailNthSweep.Run(rig.Host, () => UserIoctls.Unmap(rig.Sys, rig.Container, Iova, 256 * KiB, DmaUnmapFlags.Vaddr).Ret, []);
        int update = FailNthSweep.Run(rig.Host, () => UserIoctls.UpdateVaddr(rig.Sys, rig.Container, Iova, vaddr, 256 * KiB), []);

        Assert.Equal((0, 0), (invalidate, update));
    }

    [Theory]
    [InlineData("reset")]
    [InlineData("memory-disable")]
    public void DeviceReset_WithBarMmapFaultedIn_HasNoFailurePoint(string kind)
    {
        var rig = new StressRig();
        Assert.Equal(0, rig.Sys.WriteMemory(rig.BarVaddr, [1, 2, 3, 4]));

        int points = FailNthSweep.Run(rig.Host, () => kind switch
        {
            "reset" => rig.Sys.Ioctl(rig.GpuFd, VfioIoctl.DeviceReset, 0),
            "hot-reset" => rig.HotReset(),
            _ => rig.SetGpuMemory(false),
        }, []);

        Assert.Equal(0, points);
    }

    [Fact]
    public void HotReset_ArrayAllocFails_ReturnsENOMEMAndResetsNothing()
    {
        // vfio_pci_ioctl_pci_hot_reset_groups allocates the fd and file arrays (kcalloc) before it reads the fds:
        // the one failure point; nothing was zapped, locked or reset.
        var rig = new StressRig();
        Assert.Equal(0, rig.Sys.WriteMemory(rig.BarVaddr, [1, 2, 3, 4]));
        int resets = rig.Host.Devices["gpu"].Function!.ResetCount;

        int points = FailNthSweep.Run(rig.Host, rig.HotReset, [Errno.ENOMEM]);

        Assert.Equal(1, points);
        Assert.Equal(resets + 1, rig.Host.Devices["gpu"].Function!.ResetCount);
    }

    [Fact]
    public void GetHotResetInfo_DevicesAllocFails_ReturnsENOMEMAndCopiesNothingBack()
    {
        // vfio_pci_ioctl_get_pci_hot_reset_info: kcalloc of the devices array after the ENOSPC check.
        var rig = new StressRig();
        uint argsz = (uint)(VfioPciHotResetInfo.SizeOf + (2 * VfioPciDependentDevice.SizeOf));
        byte[] buffer = new byte[argsz];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(buffer, argsz);

        int points = FailNthSweep.Run(rig.Host, () =>
        {
            long ret = rig.Sys.Ioctl(rig.GpuFd, VfioIoctl.DeviceGetPciHotResetInfo, buffer);
            if (ret < 0)
            {
                Assert.All(buffer.AsSpan(4).ToArray(), b => Assert.Equal(0, b));
            }
            return ret;
        }, [Errno.ENOMEM]);

        Assert.Equal(1, points);
        VfioPciHotResetInfo.TryRead(buffer, out VfioPciHotResetInfo info);
        Assert.Equal(2u, info.Count);
    }

    [Fact]
    public void CpuWrite_NthAllocOfAFaultFails_ReturnsErrorAndChangesNothing()
    {
        var rig = new StressRig();
        long a = rig.Sys.Mmap(0, 64 * KiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);

        int points = FailNthSweep.Run(rig.Host, () => rig.Sys.WriteMemory((ulong)a + 0x3000, [9]), [Errno.EFAULT, Errno.ENOMEM, Errno.EIO]);

        Assert.True(points > 0);
    }
}
