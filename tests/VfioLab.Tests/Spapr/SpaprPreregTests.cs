using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Spapr;

namespace VfioLab.Tests.Spapr;

/// <summary>v2 pre-registration (REGISTER/UNREGISTER_MEMORY) and MAP/UNMAP through registered memory.</summary>
public sealed class SpaprPreregTests
{
    private const ulong KiB = SpaprTestHost.KiB;
    private const ulong MiB = SpaprTestHost.MiB;

    private static (SpaprTestHost H, int C, ulong Ram) Registered(ulong size = 4 * MiB, ulong memlock = ulong.MaxValue)
    {
        var h = new SpaprTestHost(memlock: memlock);
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(size);
        Assert.Equal(0, h.Register(c, ram, size));
        return (h, c, ram);
    }

    [Fact]
    public void RegisterMemory_New_PinsAndChargesOnce()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        Assert.Equal(64UL, h.PinnedFrames);
        Assert.Equal(64UL, h.LockedVmPages);
        Assert.Equal(0, h.Map(c, 0, ram, 4 * MiB));
        Assert.Equal(64UL, h.TotalPins);
        Assert.Equal(64UL + (8 * MiB >> 16), h.LockedVmPages);   // plus the default window's table
        h.AssertClean();
    }

    [Fact]
    public void RegisterMemory_SameRegionTwice_ReturnsEBUSY()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EBUSY.AsReturn(), h.Register(c, ram, 4 * MiB));
        Assert.Null(h.Digest().FirstDifference(before));
        Assert.Equal(1UL, h.Driver.Mms.Of(h.Process.LastMm).Regions[0].Used);
    }

    [Fact]
    public void RegisterMemory_Overlapping_ReturnsEINVALAndUnwinds()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Register(c, ram + (1 * MiB), 1 * MiB));
        Assert.Null(h.Digest().FirstDifference(before));
        Assert.Equal(64UL, h.LockedVmPages);
        h.AssertClean();
    }

    [Theory]
    [InlineData(0x1000UL, 64UL * 1024)]
    [InlineData(0UL, 0x1000UL)]
    public void RegisterMemory_OffPageSize_ReturnsEINVAL(ulong offset, ulong size)
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1 * MiB);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Register(c, ram + offset, size));
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0, ram, 64 * KiB));   // still not enabled
    }

    [Fact]
    public void RegisterMemory_SizeZero_ReturnsENOMEMAndChangesNothing()
    {
        // mm_iommu_do_alloc: account_locked_vm(mm, 0) is a no-op, then vzalloc(0) returns NULL.
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Register(c, ram, 0));

        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.Empty(h.Driver.Mms.Of(h.Process.LastMm).Regions);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0, ram, 64 * KiB));   // not enabled
        Assert.Equal(Errno.ENOENT.AsReturn(), h.Unregister(c, ram, 0));
    }

    [Fact]
    public void RegisterMemory_Flags_ReturnsEINVAL()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1 * MiB);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Register(c, ram, 1 * MiB, flags: 1));
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Register(c, ram, 1 * MiB, argsz: 23));
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void RegisterMemory_PastMemlock_ReturnsENOMEMWithNothingPinned()
    {
        var h = new SpaprTestHost(memlock: 1 * MiB);
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(4 * MiB);
        Assert.Equal(Errno.ENOMEM.AsReturn(), h.Register(c, ram, 4 * MiB));
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        h.AssertClean();
    }

    [Fact]
    public void RegisterMemory_UnbackedTail_ReturnsThePagesPinnedAndUnwinds()
    {
        // mm_iommu_do_alloc returns pin_user_pages' partial count as it is: a positive value, not an errno.
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1 * MiB);
        Assert.Equal(0, h.Sys.Munmap(ram + (512 * KiB), 512 * KiB));
        Assert.Equal(8, h.Register(c, ram, 1 * MiB));
        Assert.Equal(0UL, h.TotalPins);
        Assert.Equal(0UL, h.LockedVmPages);
        Assert.Empty(h.Driver.Mms.Of(h.Process.LastMm).Regions);
    }

    [Fact]
    public void RegisterMemory_ReadOnly_ReturnsEFAULT()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ro = h.MmapReadOnly(1 * MiB);
        Assert.Equal(Errno.EFAULT.AsReturn(), h.Register(c, ro, 1 * MiB));
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void RegisterMemory_SameRegionFromSecondContainer_SharesIt()
    {
        (SpaprTestHost h, _, ulong ram) = Registered();
        (int c2, _) = h.Container(v2: true, group: SpaprTestHost.NicGroup);
        Assert.Equal(0, h.Register(c2, ram, 4 * MiB));
        Assert.Equal(64UL, h.TotalPins);
        Assert.Equal(64UL, h.LockedVmPages);
        Assert.Equal(2UL, h.Driver.Mms.Of(h.Process.LastMm).Regions[0].Used);
        h.AssertClean();
    }

    [Fact]
    public void UnregisterMemory_NotRegistered_ReturnsENOENT()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        Assert.Equal(Errno.ENOENT.AsReturn(), h.Unregister(c, ram, 1 * MiB));
        Assert.Equal(64UL, h.TotalPins);
    }

    [Fact]
    public void UnregisterMemory_BeforeAnyRegistration_ReturnsEPERM()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Unregister(c, 0x10000, 64 * KiB));
    }

    [Fact]
    public void UnregisterMemory_HeldByAnotherContainerOnly_ReturnsENOENT()
    {
        (SpaprTestHost h, _, ulong ram) = Registered();
        (int c2, _) = h.Container(v2: true, group: SpaprTestHost.NicGroup);
        ulong other = h.MmapAnonymous(64 * KiB);
        Assert.Equal(0, h.Register(c2, other, 64 * KiB));
        Assert.Equal(Errno.ENOENT.AsReturn(), h.Unregister(c2, ram, 4 * MiB));
        Assert.Equal(1UL, h.Driver.Mms.Of(h.Process.LastMm).Regions.Single(r => r.Ua == ram).Used);
        h.AssertClean();
    }

    [Fact]
    public void UnregisterMemory_WhileMapped_ReturnsZeroButKeepsTheRegionPinned()
    {
        // Linux: the container's put succeeds (the lookup holds a user), the last put sees TCEs and answers
        // EBUSY, which tce_iommu_unregister_pages ignores. The region stays pinned and charged, orphaned.
        (SpaprTestHost h, int c, ulong ram) = Registered();
        Assert.Equal(0, h.Map(c, 0, ram, 1 * MiB));
        Assert.Equal(0, h.Unregister(c, ram, 4 * MiB));
        MmIommuRegion region = Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions);
        Assert.False(region.Released);
        Assert.Equal(1UL, region.Used);
        Assert.Empty(h.Backend(c).Snapshot().Prereg);
        Assert.Equal(64UL, h.TotalPins);
        h.AssertClean();
        // Unmapped, it is still registered, but no container holds it: unregister cannot find it.
        Assert.Equal(0, h.Unmap(c, 0, 1 * MiB).Ret);
        Assert.Equal(Errno.ENOENT.AsReturn(), h.Unregister(c, ram, 4 * MiB));
        // Registering it again adopts it, but the orphan's user is never dropped: unregistering leaves it
        // registered, and so does closing the container. Its pages stay pinned for the mm's lifetime.
        Assert.Equal(0, h.Register(c, ram, 4 * MiB));
        Assert.Equal(0, h.Unregister(c, ram, 4 * MiB));
        Assert.Equal(64UL, h.TotalPins);
        Assert.Equal(1UL, region.Used);
        h.AssertClean();
    }

    [Fact]
    public void MapDma_V2NotRegistered_ReturnsEINVALAndClearsWhatItWrote()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered(size: 1 * MiB);
        Assert.Equal(0, h.Map(c, 0, ram, 64 * KiB));
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, 0x100000, ram + (512 * KiB), 1 * MiB));
        Assert.Null(h.Digest().FirstDifference(before));
        h.AssertClean();
    }

    [Fact]
    public void MapDma_V2NotEnabled_ReturnsEPERM()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(64 * KiB);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0, ram, 64 * KiB));
        Assert.Equal(Errno.EPERM.AsReturn(), h.Unmap(c, 0, 64 * KiB).Ret);
    }

    [Fact]
    public void MapDma_V2_RecordsTheUserspaceViewAndMappedCount()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        Assert.Equal(0, h.Map(c, 0x40000, ram + (64 * KiB), 256 * KiB));
        MmIommuRegion region = Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions);
        Assert.Equal(1UL + 64, region.Mapped);   // 4 KiB TCEs: 64 of them
        TceWindowSnapshot w = Assert.Single(h.Backend(c).Snapshot().Windows);
        Assert.Equal(ram + (64 * KiB), w.Runs[0].Value.Ua);
        Assert.Equal(0, h.Unmap(c, 0x40000, 128 * KiB).Ret);
        Assert.Equal(1UL + 32, region.Mapped);
        h.AssertClean();
    }

    [Fact]
    public void MapDma_V2TceLargerThanTheRegionsPages_ReturnsEINVAL()
    {
        (SpaprTestHost h, int c, ulong ram) = Registered();
        (long ret, ulong start) = h.Create(c, 24, 1UL << 32);
        Assert.Equal(0, ret);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, start, ram, 16 * MiB));
        Assert.Equal(0UL, h.ValidTces());
    }

    [Fact]
    public void MapDma_V2Hugetlb1G_Allows16MTces()
    {
        var h = new SpaprTestHost(memory: 4 * SpaprTestHost.GiB);
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapHuge(1 * SpaprTestHost.GiB, MmapFlags.Huge1GiB);
        Assert.Equal(0, h.Register(c, ram, 1 * SpaprTestHost.GiB));
        Assert.Equal(30, Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions).PageShift);
        (long ret, ulong start) = h.Create(c, 24, 1UL << 32);
        Assert.Equal(0, ret);
        Assert.Equal(0, h.Map(c, start, ram, 1 * SpaprTestHost.GiB));
        Assert.Equal(64UL, h.ValidTces());
        h.AssertClean();
    }

    [Fact]
    public void MapDma_V2Hugetlb2M_Refuses16MTces()
    {
        var h = new SpaprTestHost(memory: 4 * SpaprTestHost.GiB);
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapHuge(64 * MiB, MmapFlags.Huge2MiB);
        Assert.Equal(0, h.Register(c, ram, 64 * MiB));
        Assert.Equal(21, Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions).PageShift);
        (long ret, ulong start) = h.Create(c, 24, 1UL << 32);
        Assert.Equal(0, ret);
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, start, ram, 64 * MiB));
        Assert.Equal(0UL, h.ValidTces());
    }
}
