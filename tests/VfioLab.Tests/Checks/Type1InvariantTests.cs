using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Tests.Type1;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Tests.Checks;

/// <summary>
/// The type1 invariants: a clean container with two domains (different page sizes), an emulated group,
/// anonymous, hugetlb, aliased and device-memory mappings and dirty tracking reports nothing; then each
/// invariant is broken on purpose through one test hook and must be the only one reported.
/// </summary>
public sealed class Type1InvariantTests
{
    private const ulong MiB = Type1TestHost.MiB;

    // IOVAs of the clean state's mappings.
    private const ulong Anon = 0x100000;       // 4 MiB anonymous, populated
    private const ulong Alias = 0x1000000;     // the same 4 MiB again: every frame pinned twice
    private const ulong Huge = 0x4000_0000;    // 4 MiB of 2 MiB hugetlb pages
    private const ulong Small = 0x2000000;     // 64 KiB anonymous, faulted in by the pin
    private const ulong Bar = 0x8000_0000;     // 1 MiB of the GPU's BAR 0 (PFNMAP: never pinned)

    private static readonly IommuHardwareProfile OtherIommu =
        IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false);

    [Fact]
    public void Check_CleanMultiDomainState_ReportsNothing()
    {
        Fixture f = Clean();

        Assert.Empty(f.Check());
        VfioIommuSnapshot s = f.Backend.Snapshot();
        Assert.Equal(2, s.Domains.Count);
        Assert.Single(s.EmulatedGroups);
        Assert.Equal(5, s.Mappings.Count);
        Assert.True(s.DirtyTracking);
    }

    [Fact]
    public void Check_AfterUnmapDetachAndStop_StaysClean()
    {
        Fixture f = Clean();
        Assert.Equal(0, f.T.Unmap(f.Container, Alias, 4 * MiB).Ret);
        Assert.Empty(f.Check());
        Assert.Equal(0, f.T.UnsetContainer(f.OtherGroup));
        Assert.Empty(f.Check());
        Assert.Equal(0, f.T.Dirty(f.Container, DirtyPagesFlags.Stop));
        Assert.Empty(f.Check());
        Assert.Equal(0, f.T.Unmap(f.Container, Bar, 1 * MiB).Ret);
        Assert.Equal(0, f.T.Sys.Munmap(f.BarVaddr, 1 * MiB));
        Assert.Equal(0, f.T.Sys.Close(f.GpuDevice));
        Assert.Empty(f.Check());
        Assert.Equal(0, f.T.UnsetContainer(f.GpuGroup));
        Assert.Equal(0, f.T.UnsetContainer(f.NicGroup));

        // Only the emulated group is left: no domain, no pin, no charge; the mappings stay.
        Assert.Empty(f.Check());
        Assert.Equal(0UL, f.T.TotalPins);
        Assert.Equal(0UL, f.T.LockedVmPages);

        Assert.Equal(0, f.T.UnsetContainer(f.MdevGroup));
        Assert.Empty(f.Check());
    }

    [Fact]
    public void Check_OwnerChangesAndExits_StaysClean()
    {
        var t = new Type1TestHost(memlock: 64 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, Anon, buf, 4 * MiB));
        Assert.Equal(0, t.Map(c, Small, buf, 64 * 1024));
        ISyscallSurface child = t.Sys.Fork();
        Assert.Empty(new InvariantChecker(t.Host).Check());

        // The child takes the invalidated mapping over: its mm is charged, the parent's no longer.
        Assert.Equal(0, t.Unmap(c, Anon, 4 * MiB, DmaUnmapFlags.Vaddr).Ret);
        Assert.Empty(new InvariantChecker(t.Host).Check());
        Span<byte> map = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Vaddr, Vaddr = buf, Iova = Anon, Size = 4 * MiB }.Write(map);
        Assert.Equal(0, child.Ioctl(c, VfioIoctl.IommuMapDma, map));
        Assert.Empty(new InvariantChecker(t.Host).Check());

        // The parent exits: the child's fds keep the container; the parent's mm is dead with its charge.
        t.Sys.Exit();
        Assert.Empty(new InvariantChecker(t.Host).Check());
        Span<byte> unmap = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = DmaUnmapFlags.All }.Write(unmap);
        Assert.Equal(0, child.Ioctl(c, VfioIoctl.IommuUnmapDma, unmap));
        Assert.Empty(new InvariantChecker(t.Host).Check());
        Assert.Equal(0UL, t.TotalPins);

        child.Exit();
        Assert.Empty(new InvariantChecker(t.Host).Check());
        Assert.Empty(t.Host.Vfio.Containers);
    }

    [Fact]
    public void Check_TreeRangeHandedToNeighbour_ReportsMappingsDisjoint()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.ClaimTreeRangeForTest(Anon + (4 * MiB) - 0x1000, Anon + (4 * MiB) - 1, Alias);

        AssertOnly(f, "mappings-disjoint");
    }

    [Fact]
    public void Check_DmaAvailBumped_ReportsDmaAvailConserved()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.AdjustDmaAvailForTest(+1);

        AssertOnly(f, "dma-avail-conserved");
    }

    [Fact]
    public void Check_EntryInOneDomainOnly_ReportsDomainsAgree()
    {
        Fixture f = Clean();
        PhysAddr pinned = f.FirstDomain.IovaToPhys(new Iova(Anon));

        Assert.Equal(Errno.None, f.Backend.TestHooks.MapStrayEntryForTest(1, 0x3000_0000, pinned, 0x1000));

        AssertOnly(f, "domains-agree");
    }

    [Fact]
    public void Check_MappingNotIommuMappedWithDomains_ReportsDomainsAgree()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetIommuMappedForTest(Small, false);

        AssertOnly(f, "domains-agree");
    }

    [Fact]
    public void Check_TranslatedFrameUnpinned_ReportsTranslationBacked()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.UnpinBehindBackendForTest(Small);
        f.PinSpareFrame();   // keeps the pin total, so only the missing pin shows

        AssertOnly(f, "translation-backed");
    }

    [Fact]
    public void Check_MappingLockedVmDrifts_ReportsLockedVmMatchesCharges()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Small, -1);

        AssertOnly(f, "locked-vm-matches-charges");
    }

    [Fact]
    public void Check_MmChargedBehindBackend_ReportsLockedVmMatchesCharges()
    {
        Fixture f = Clean();
        AddressSpace mm = f.T.Process.Mm!;

        mm.MmapWriteLock();
        mm.AddLockedVmLocked(1, ulong.MaxValue);
        mm.MmapWriteUnlock();

        AssertOnly(f, "locked-vm-matches-charges");
    }

    [Fact]
    public void Check_MemlockLoweredBelowCharge_IsCleanAndNextMapFailsENOMEM()
    {
        Fixture f = Clean();
        AddressSpace mm = f.T.Process.Mm!;
        ulong locked = mm.LockedVm;

        // setrlimit below a live charge is legal in Linux: the limit is judged only when charging.
        f.T.Process.MemlockLimitBytes = 1 * MiB;

        Assert.Empty(f.Check());
        Assert.Equal(Errno.ENOMEM.AsReturn(), f.T.Map(f.Container, 0x6000_0000, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        Assert.Equal(locked, mm.LockedVm);
        Assert.Equal(5, f.Backend.Snapshot().Mappings.Count);
        Assert.Empty(f.Check());
    }

    [Fact]
    public void Check_ChargedPastTheLimitInForce_ReportsLockedVmWithinLimit()
    {
        Fixture f = Clean();
        AddressSpace mm = f.T.Process.Mm!;
        f.T.Process.MemlockLimitBytes = 1 * MiB;

        // A charge taken past the lowered limit, behind vfio_lock_acct's check (so no mapping owns it either).
        mm.MmapWriteLock();
        mm.AddLockedVmLocked(1, f.T.Process.MemlockLimitPages);
        mm.MmapWriteUnlock();

        Assert.Equal(["locked-vm-matches-charges", "locked-vm-within-limit"], f.Check().Select(v => v.Invariant).Order());
    }

    [Fact]
    public void Check_MemlockLoweredWithCapIpcLock_IsClean()
    {
        Fixture f = Clean(capIpcLock: true);

        f.T.Process.MemlockLimitBytes = 1 * MiB;

        Assert.Empty(f.Check());
    }

    [Fact]
    public void Check_FrameTranslatedTwiceInOneMapping_ReportsHostPageChargedOncePerMapping()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.AliasPageForTest(Small + 0x1000, Small);

        AssertOnly(f, "host-page-charged-once-per-mapping");
    }

    [Fact]
    public void Check_ExternalPinWithZeroRefCount_ReportsVpfnConsistent()
    {
        Fixture f = Clean();
        var pfn = new Pfn(f.FirstDomain.IovaToPhys(new Iova(Small)).Value >> 12);

        f.Backend.TestHooks.SetVpfnForTest(Small, pfn, refCount: 0);

        AssertOnly(f, "vpfn-consistent");
    }

    [Fact]
    public void Check_VaddrInvalidCountDrifts_ReportsVaddrInvalidCount()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetVaddrInvalidCountForTest(1);

        AssertOnly(f, "vaddr-invalid-count");
    }

    [Fact]
    public void Check_BitmapDroppedWhileTracking_ReportsDirtyBitmapsPresent()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.DropBitmapForTest(Huge);

        AssertOnly(f, "dirty-bitmaps-present");
    }

    [Fact]
    public void Check_NonPinnedGroupCountDrifts_ReportsNonPinnedGroupsCount()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetNumNonPinnedGroupsForTest(2);

        AssertOnly(f, "non-pinned-groups-count");
    }

    [Fact]
    public void Check_WindowExcludesMapping_ReportsMappingInIovaRange()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetIovaListForTest([new ByteRange(0, 0x3fff_ffff), new ByteRange(0x8000_0000, 0xfedf_ffff)]);

        AssertOnly(f, "mapping-in-iova-range");
    }

    [Fact]
    public void Check_WindowCoversMsiHole_ReportsMappingInIovaRange()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetIovaListForTest([new ByteRange(0, (1UL << 39) - 1)]);

        AssertOnly(f, "mapping-in-iova-range");
    }

    [Fact]
    public void Check_PgsizeBitmapNotTheDomainsAnd_ReportsPgsizeBitmap()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.SetPgsizeBitmapForTest(PageSizeBitmap.Size4K);

        AssertOnly(f, "pgsize-bitmap");
    }

    [Fact]
    public void Check_GroupInDomainAndEmulatedList_ReportsGroupAttachedOnce()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.ListAsEmulatedForTest(f.T.Host.Vfio.FindGroup(Type1TestHost.GpuGroup)!);

        AssertOnly(f, "group-attached-once");
    }

    [Fact]
    public void Check_InvalidationNeverFlushed_ReportsUnpinAfterFlush()
    {
        Fixture f = Clean();

        f.Backend.TestHooks.LeavePendingInvalidationForTest(Small);

        AssertOnly(f, "unpin-after-flush");
    }

    [Fact]
    public void Check_FramePinnedByNobody_ReportsPinsBalanced()
    {
        Fixture f = Clean();

        f.PinSpareFrame();

        AssertOnly(f, "pins-balanced");
    }

    [Fact]
    public void Check_SharedFrameUnpinnedOnce_ReportsPinsBalanced()
    {
        Fixture f = Clean();

        // Anon and Alias pin each frame twice: one pin less leaves it backed but the total short.
        Pfn pfn = f.Backend.TestHooks.UnpinBehindBackendForTest(Anon);

        Assert.Equal(1UL, f.T.Machine.Memory.PinCount(pfn));
        AssertOnly(f, "pins-balanced");
    }

    [Fact]
    public void Checked_ListsEveryType1InvariantByItsScenarioName()
    {
        foreach (string name in new[]
        {
            "mappings-disjoint", "dma-avail-conserved", "domains-agree", "translation-backed", "locked-vm-matches-charges",
            "locked-vm-within-limit", "host-page-charged-once-per-mapping", "vpfn-consistent", "vaddr-invalid-count",
            "dirty-bitmaps-present", "non-pinned-groups-count", "mapping-in-iova-range", "pgsize-bitmap", "group-attached-once",
            "unpin-after-flush", "empty-container-clean", "pins-balanced",
        })
        {
            Assert.Contains(name, InvariantChecker.Checked);
        }
        Assert.All(InvariantChecker.Checked, name => Assert.True(VfioLab.Lab.InvariantNames.IsKnown(name), name));
    }

    private static void AssertOnly(Fixture f, string invariant)
    {
        IReadOnlyList<InvariantViolation> found = f.Check();
        Assert.True(found.Count > 0, $"{invariant} was not reported");
        Assert.True(found.All(v => v.Invariant == invariant), string.Join("\n", found.Select(v => $"{v.Invariant}: {v.Message}")));
    }

    // Two domains (the host IOMMU for the GPU and NIC; a second IOMMU with 4K|2M for group 3), the mdev's
    // emulated group, five mappings of four kinds, and dirty tracking on.
    private static Fixture Clean(bool capIpcLock = false)
    {
        var t = new Type1TestHost(memory: 512 * MiB, otherIommu: OtherIommu, memlock: 256 * MiB, capIpcLock: capIpcLock);
        (int c, int gpu) = t.Container();
        int nic = t.AddGroup(c, Type1TestHost.NicGroup);
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        int mdev = t.AddGroup(c, Type1TestHost.MdevGroup);

        ulong anon = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, Anon, anon, 4 * MiB));
        Assert.Equal(0, t.Map(c, Alias, anon, 4 * MiB));
        ulong huge = t.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);
        Assert.Equal(0, t.Map(c, Huge, huge, 4 * MiB));
        Assert.Equal(0, t.Map(c, Small, t.MmapAnonymous(64 * 1024), 64 * 1024));
        ulong bar = MmapBar(t, gpu, out int device);
        Assert.Equal(0, t.Map(c, Bar, bar, 1 * MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        return new Fixture(t, c, t.Backend(c), gpu, nic, other, mdev, device, bar);
    }

    // The GPU's BAR 0 mmapped through its device fd with memory decode on.
    private static ulong MmapBar(Type1TestHost t, int groupFd, out int dev)
    {
        dev = (int)t.Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, Encoding.ASCII.GetBytes(Type1TestHost.GpuName + "\0"));
        Assert.True(dev >= 0, $"GET_DEVICE_FD: {dev}");
        ulong command = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + 4;
        Assert.Equal(2, t.Sys.Pwrite(dev, new byte[] { 2, 0 }, command));
        long addr = t.Sys.Mmap(0, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, dev, VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0));
        Assert.True(addr > 0, $"mmap BAR: {addr}");
        return (ulong)addr;
    }

    private sealed record Fixture(Type1TestHost T, int Container, VfioIommu Backend, int GpuGroup, int NicGroup, int OtherGroup, int MdevGroup,
        int GpuDevice, ulong BarVaddr)
    {
        public IommuDomain FirstDomain => Backend.Snapshot().Domains[0].Domain;

        public IReadOnlyList<InvariantViolation> Check() => new InvariantChecker(T.Host).Check();

        public void PinSpareFrame()
        {
            Assert.True(T.Machine.Memory.TryAllocateRun(1, out PfnRun run));
            T.Machine.Memory.Pin(run.First, 1);
        }
    }
}
