using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

// MAP_DMA with VADDR and the ownership rules: who is charged, CAP_IPC_LOCK, double mapping (spec §3.12, §3.13).
public sealed partial class MapDmaTests
{
    // ---- 7. VADDR update ----

    [Fact]
    public void MapDmaVaddr_NoMapping_ReturnsENOENT()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.ENOENT.AsReturn(), t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Vaddr));
        // No IOVA-window check on this path: ENOENT even inside the MSI hole.
        Assert.Equal(Errno.ENOENT.AsReturn(), t.Map(c, 0xfee00000, buf, 1 * MiB, DmaMapFlags.Vaddr));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDmaVaddr_MappingNotInvalidated_ReturnsEINVAL()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, buf + (1 * MiB), 1 * MiB, DmaMapFlags.Vaddr));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(256UL, t.LockedVmPages);
        // Not invalidated, so a group may still attach.
        t.AddGroup(c, Type1TestHost.NicGroup);
    }

    [Theory]
    [InlineData(0x0UL, 0x80000UL)] // smaller
    [InlineData(0x0UL, 0x200000UL)] // larger
    [InlineData(0x80000UL, 0x80000UL)] // inside, other start
    [InlineData(0x80000UL, 0x100000UL)] // shifted
    public void MapDmaVaddr_IovaOrSizeDiffers_ReturnsEINVALAndStaysInvalid(ulong iova, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, iova, buf + (2 * MiB), size, DmaMapFlags.Vaddr));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(256UL, t.LockedVmPages);
        // Still invalid: attaching another group is refused.
        int g = t.OpenGroup(Type1TestHost.NicGroup);
        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(g, c));
    }

    [Fact]
    public void MapDmaVaddr_InvalidatedMapping_UpdatesWithoutPinningOrSlot()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 1 * MiB));
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        PhysAddr before = d.IovaToPhys(new Iova(0x100000));
        (long ret, ulong size) = t.Unmap(c, 0x100000, 1 * MiB, DmaUnmapFlags.Vaddr);
        Assert.Equal(0, ret);
        Assert.Equal(1 * MiB, size);
        // Invalidation keeps the pages pinned and mapped (DMA continues).
        Assert.Equal(256UL, t.TotalPins);
        Assert.True(d.Translate(new Iova(0x100000), write: true).Ok);
        ulong moved = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0x100000, moved, 1 * MiB, DmaMapFlags.Vaddr));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(65534UL, t.Backend(c).DmaAvail);
        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(256UL, t.TotalPins);
        Assert.Equal(before, d.IovaToPhys(new Iova(0x100000)));
        // Valid again: a second update is refused, and a group may attach.
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x100000, moved, 1 * MiB, DmaMapFlags.Vaddr));
        t.AddGroup(c, Type1TestHost.NicGroup);
        Assert.Equal(0, t.Unmap(c, 0x100000, 1 * MiB).Ret);
        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDmaVaddr_FromForkedChild_MovesChargeToChildMm()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        AddressSpace childMm = child!.Mm!;
        Assert.Equal(0UL, childMm.LockedVm);

        Assert.Equal(0, child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(0, buf, 1 * MiB, DmaMapFlags.Vaddr)));

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(256UL, childMm.LockedVm);
        Assert.Equal(1UL, t.Backend(c).MappingCount);

        // The child now owns it: unmapping (by either process) un-charges the child's mm.
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB).Ret);
        Assert.Equal(0UL, childMm.LockedVm);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void MapDmaVaddr_ChildOverMemlock_ReturnsENOMEMAndStaysWithParent()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        child!.MemlockLimitBytes = 1 * MiB - t.PageSize;

        Assert.Equal(Errno.ENOMEM.AsReturn(), child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(0, buf, 1 * MiB, DmaMapFlags.Vaddr)));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(0UL, child.Mm!.LockedVm);
        // Still invalid; with the limit raised the update goes through.
        child.MemlockLimitBytes = 1 * MiB;
        Assert.Equal(0, child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(0, buf, 1 * MiB, DmaMapFlags.Vaddr)));
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(256UL, child.Mm!.LockedVm);
    }

    [Fact]
    public void MapDmaVaddr_ChildWithCapIpcLock_ChargesPastItsLimit()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        child!.MemlockLimitBytes = 0;
        child.CapIpcLock = true;

        Assert.Equal(0, child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(0, buf, 1 * MiB, DmaMapFlags.Vaddr)));

        Assert.Equal(256UL, child.Mm!.LockedVm);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDmaVaddr_OldOwnerExited_ChargesNewOwnerOnly()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        AddressSpace parentMm = t.Process.LastMm;
        t.Process.Exit();
        Assert.False(parentMm.IsAlive);

        Assert.Equal(0, child!.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(0, buf, 1 * MiB, DmaMapFlags.Vaddr)));

        Assert.Equal(256UL, child.Mm!.LockedVm);
        // The dead mm keeps its counter: un-charging is skipped.
        Assert.Equal(256UL, parentMm.LockedVm);
        Assert.Equal(0, child.Syscalls.Ioctl(c, VfioIoctl.IommuUnmapDma, UnmapArg(0, 1 * MiB)));
        Assert.Equal(0UL, child.Mm!.LockedVm);
        Assert.Equal(0UL, t.TotalPins);
    }

    // ---- §3.3, §4.5: who is charged, how often ----

    [Fact]
    public void MapDma_CapIpcLock_BypassesMemlockButStillCharges()
    {
        var t = new Type1TestHost(memlock: 1 * MiB, capIpcLock: true);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.PinnedFrames);
        Assert.Equal(0, t.Unmap(c, 0, 4 * MiB).Ret);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_CapIpcLockSampledAtMap_LaterLossDoesNotMatter()
    {
        var t = new Type1TestHost(memlock: 0, capIpcLock: true);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        t.Process.CapIpcLock = false;

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB).Ret);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_SameMemoryAtTwoIovas_IsPinnedAndChargedTwice()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(512UL, t.LockedVmPages);

        Assert.Equal(0, t.Map(c, 16 * MiB, buf, 2 * MiB));

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(512UL, t.PinnedFrames);
        Assert.Equal(1024UL, t.TotalPins);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(d.IovaToPhys(new Iova(0x5000)), d.IovaToPhys(new Iova((16 * MiB) + 0x5000)));
        Assert.Equal(0, t.Unmap(c, 0, 2 * MiB).Ret);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(512UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_V1Container_MapsAndCharges()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: VfioExtension.Type1Iommu);
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, 0, buf, 1 * MiB));
    }
}
