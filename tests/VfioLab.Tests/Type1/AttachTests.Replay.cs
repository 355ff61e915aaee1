using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Type1;

namespace VfioLab.Tests.Type1;

// Replay into a new domain: pinning from the attaching process, charging the owner, unwinding (spec §3.10).
public sealed partial class AttachTests
{
    [Fact]
    public void AttachGroup_EmulatedGroupIntoIommuContainer_ChangesNoDomainOrWindow()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB), 2 * MiB));
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = gpu.TotalEntries;

        t.AddGroup(c, Type1TestHost.MdevGroup);

        Assert.Equal(entries, gpu.TotalEntries);
        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
    }

    [Fact]
    public void AttachGroup_MdevOnlyContainerGetsGpu_ReplayPinsAndCharges()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 4 * MiB));
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);

        t.AddGroup(c, Type1TestHost.GpuGroup);

        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);
        for (ulong off = 0; off < 4 * MiB; off += 0x1000)
        {
            Assert.Equal(FrameOf(t.Process.LastMm, buf + off) << 12, PhysOf(gpu, 0x100000 + off));
        }
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
    }

    [Fact]
    public void AttachGroup_ReplayCannotPinSecondMapping_ReturnsEFAULTAndUnwindsEverything()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        ulong a = t.MmapAnonymous(2 * MiB, populate: true);
        ulong b = t.MmapAnonymous(2 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, a, 2 * MiB));
        Assert.Equal(0, t.Map(c, 0x400000, b, 2 * MiB));
        Assert.Equal(0, t.Sys.Munmap(b, 2 * MiB));
        var events = EventCounter.Attach(t);
        int g = t.OpenGroup(Type1TestHost.GpuGroup);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.SetContainer(g, c));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Null(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
        Assert.Null(t.Host.Vfio.FindGroup(Type1TestHost.GpuGroup)!.Container);
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Empty(t.Backend(c).IovaRanges);
        Assert.Equal(PageMask, t.Backend(c).PgsizeBitmap);
        Assert.Equal(0, events.LiveDomains);

        // With the broken mapping gone, the same attach pins the first one.
        Assert.Equal(0, t.Unmap(c, 0x400000, 2 * MiB).Ret);
        Assert.Equal(0, t.SetContainer(g, c));
        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(512UL, t.LockedVmPages);
    }

    [Fact]
    public void AttachGroup_ReplayPastMemlock_ReturnsENOMEMAndUnwindsEverything()
    {
        var t = new Type1TestHost(memlock: 3 * MiB);
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        Assert.Equal(0, t.Map(c, 0x400000, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        int g = t.OpenGroup(Type1TestHost.GpuGroup);

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.SetContainer(g, c));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Null(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Empty(t.Backend(c).IovaRanges);
    }

    [Fact]
    public void AttachGroup_MdevMappingBeyondAperture_ReturnsMapErrorAndUnwinds()
    {
        // With no domain the IOVA list is empty, so no aperture check catches the mapping (§3.9 step 5);
        // replay pins it, VT-d's map refuses the address (EFAULT), and the unwind releases the pins.
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        Assert.Equal(0, t.Map(c, 1UL << 48, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        int g = t.OpenGroup(Type1TestHost.GpuGroup);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.SetContainer(g, c));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Equal(2UL, t.Backend(c).MappingCount);
    }

    [Fact]
    public void AttachGroup_MdevMappingInMsiWindow_ReturnsEINVALWithoutPinning()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0xfee00000, t.MmapAnonymous(MiB, populate: true), MiB));
        var events = EventCounter.Attach(t);
        int g = t.OpenGroup(Type1TestHost.GpuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Equal(0, events["pin"]);
        Assert.Equal(0, events.LiveDomains);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
    }

    [Fact]
    public void AttachGroup_ForkedChildAttaches_PinsChildPagesAndChargesMappingOwner()
    {
        // Replay pins from the attacher's mm (current->mm) but charges dma->mm (§3.10 quirk, §3.12): the
        // device ends up on the child's COW copies while the parent pays for them.
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        ulong buf = t.MmapAnonymous(2 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));

        Assert.Equal(0, SetContainer(child!.Syscalls, OpenGroup(child.Syscalls, Type1TestHost.GpuGroup), c));

        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(512UL, t.Process.LastMm.LockedVm);
        Assert.Equal(0UL, child.LastMm.LockedVm);
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong childFrame = FrameOf(child.LastMm, buf);
        Assert.Equal(childFrame << 12, PhysOf(gpu, 0));
        Assert.NotEqual(FrameOf(t.Process.LastMm, buf), childFrame);

        // The owner's unmap releases the child's frames and un-charges the owner.
        Assert.Equal((0L, 2 * MiB), t.Unmap(c, 0, 2 * MiB));
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.Process.LastMm.LockedVm);
    }

    [Fact]
    public void AttachGroup_ForkedChildWithSmallMemlock_ReturnsENOMEMFromAttachersLimit()
    {
        // The pre-check runs against the attacher's mm and RLIMIT_MEMLOCK (vfio_pin_pages_remote's limit).
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        child!.MemlockLimitBytes = MiB;
        int g = OpenGroup(child.Syscalls, Type1TestHost.GpuGroup);

        Assert.Equal(Errno.ENOMEM.AsReturn(), SetContainer(child.Syscalls, g, c));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.Process.LastMm.LockedVm);
        Assert.Equal(0UL, child.LastMm.LockedVm);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
    }

    [Fact]
    public void AttachGroup_ForkedChildMappingOwnerLimitSmall_ReturnsENOMEMFromOwnersLimit()
    {
        // The charge itself goes to dma->mm against dma->task's limit (vfio_lock_acct).
        var t = new Type1TestHost(memlock: MiB);
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        child!.MemlockLimitBytes = ulong.MaxValue;
        int g = OpenGroup(child.Syscalls, Type1TestHost.GpuGroup);

        Assert.Equal(Errno.ENOMEM.AsReturn(), SetContainer(child.Syscalls, g, c));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.Process.LastMm.LockedVm);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
    }

    [Fact]
    public void AttachGroup_MapperHasCapIpcLock_AttachersLimitNotApplied()
    {
        // lock_cap is the mapping's (sampled at MAP), not the attacher's.
        var t = new Type1TestHost(memlock: MiB, capIpcLock: true);
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        child!.CapIpcLock = false;
        int g = OpenGroup(child.Syscalls, Type1TestHost.GpuGroup);

        Assert.Equal(0, SetContainer(child.Syscalls, g, c));

        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(512UL, t.Process.LastMm.LockedVm);
    }
}
