using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// The one-page lanes of MAP_DMA (DmaPinning.PinMapOnePageLocked) and UNMAP_DMA (DmaMapUnmap.TryUnmapExactlyOneLocked)
/// against the batch paths they short-cut, on twin hosts driven call for call: one takes the lanes, the other has them
/// off (Type1TestHooks.UseBatchPathsForTest). After every call both return the same value with the same refusal (errno,
/// check, reason) and their whole states digest alike (pins, charges, IOPTEs, dirty bits, frames, mappings); under
/// fault injection each fallible site is asked as often and fails at the same call. Each test also checks the lanes
/// were taken, so none passes by never reaching them.
/// </summary>
public sealed class OnePageLaneTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Iova0 = 0x4000_0000;

    [Theory]
    [InlineData("one-domain")]
    [InlineData("two-domains")]
    [InlineData("scattered")]
    [InlineData("64k-host")]
    [InlineData("v1")]
    public void MapUnmapOnePage_AmongNeighbours_SameAsBatchPaths(string config)
    {
        Twin t = Twin.Of(config);
        ulong ps = t.PageSize;
        long vaddr = t.Both(h => (long)h.T.MmapAnonymous(64 * ps, populate: true), "mmap");
        // Pages at every other IOVA page, then the ones between (their IOPTE runs join their neighbours when the frames
        // are contiguous), then unmapped one by one in another order, and a range of several at once.
        for (ulong i = 0; i < 64; i += 2)
        {
            Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + (i * ps), (ulong)vaddr + (i * ps), ps), $"map {i}"));
        }
        for (ulong i = 1; i < 64; i += 2)
        {
            Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + (i * ps), (ulong)vaddr + (i * ps), ps), $"map {i}"));
        }
        for (ulong i = 0; i < 32; i += 3)
        {
            Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0 + (i * ps), ps).Ret, $"unmap {i}"));
        }
        t.Both(h => h.T.Unmap(h.C, Iova0 + (40 * ps), 8 * ps).Ret, "unmap 8 pages");
        // A page already mapped, an unmap that cuts nothing, one that finds nothing, and one that would bisect.
        t.Both(h => h.T.Map(h.C, Iova0 + (63 * ps), (ulong)vaddr, ps), "map over a mapping");
        t.Both(h => h.T.Unmap(h.C, Iova0 + (3 * ps), ps).Ret, "unmap a hole");
        t.Both(h => h.T.Unmap(h.C, Iova0 + (62 * ps), 2 * ps).Ret, "unmap two");
        t.Both(h => h.T.Map(h.C, Iova0 + (100 * ps), (ulong)vaddr, 2 * ps), "map two pages");
        t.Both(h => h.T.Unmap(h.C, Iova0 + (100 * ps), ps).Ret, "unmap half of a mapping");
        t.Both(h => h.T.Unmap(h.C, 0, 0, DmaUnmapFlags.All).Ret, "unmap all");
        t.AssertLanesTaken();
    }

    [Fact]
    public void MapOnePage_PastMemlock_ReturnsENOMEMAsBatchPath()
    {
        Twin t = Twin.Of("one-domain", memlock: 3 * 4096);
        ulong ps = t.PageSize;
        long vaddr = t.Both(h => (long)h.T.MmapAnonymous(8 * ps, populate: true), "mmap");
        for (ulong i = 0; i < 3; i++)
        {
            Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + (i * ps), (ulong)vaddr + (i * ps), ps), $"map {i}"));
        }
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Both(h => h.T.Map(h.C, Iova0 + (3 * ps), (ulong)vaddr + (3 * ps), ps), "map past the limit"));
        Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0, ps).Ret, "unmap one"));
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + (3 * ps), (ulong)vaddr + (3 * ps), ps), "map within the limit again"));
        t.AssertLanesTaken();
    }

    [Fact]
    public void MapOnePage_GupFails_ReturnsEFAULTAsBatchPath()
    {
        Twin t = Twin.Of("one-domain");
        ulong ps = t.PageSize;
        long ro = t.Both(h => (long)h.T.MmapReadOnly(4 * ps), "mmap read-only");
        long rw = t.Both(h => (long)h.T.MmapAnonymous(4 * ps), "mmap, not populated");
        // A write pin of read-only memory, a hole, then a page GUP faults in, and a read-only pin of the read-only memory.
        Assert.Equal(Errno.EFAULT.AsReturn(), t.Both(h => h.T.Map(h.C, Iova0, (ulong)ro, ps), "write map of read-only memory"));
        Assert.Equal(Errno.EFAULT.AsReturn(), t.Both(h => h.T.Map(h.C, Iova0, 0x7000_0000_0000, ps), "map of a hole"));
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0, (ulong)rw + ps, ps), "map faulting the page in"));
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + ps, (ulong)ro, ps, DmaMapFlags.Read), "read map of read-only memory"));
        Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0, ps).Ret, "unmap"));
        t.AssertLanesTaken();
    }

    [Fact]
    public void MapOnePage_PfnmapMemory_TranslatesAsBatchPath()
    {
        // Another driver's PFNMAP: GUP refuses it and the page-table walk maps it (reserved: neither pinned nor charged).
        Twin t = Twin.Of("pfnmap");
        ulong ps = t.PageSize;
        long vaddr = t.Both(h =>
        {
            ulong a = h.T.MmapAnonymous(4 * ps, populate: true);
            Pfn mmio = h.T.Machine.AllocateMmioPfns(2);
            Assert.Equal((long)(a + (2 * ps)), h.T.Process.Mm!.MmapOtherMmio(a + (2 * ps), 2 * ps, MemoryProtection.Read | MemoryProtection.Write, true, false, mmio));
            return (long)a;
        }, "mmap and PFNMAP");
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0, (ulong)vaddr, ps), "map RAM"));
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + ps, (ulong)vaddr + (2 * ps), ps), "map PFNMAP"));
        Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0 + ps, ps).Ret, "unmap PFNMAP"));
        Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0, ps).Ret, "unmap RAM"));
        t.AssertLanesTaken();
    }

    [Fact]
    public void MapOnePage_ZeroPageKept_NeitherPinnedNorChargedAsBatchPath()
    {
        // Linux 6.1 pins the shared zero frame for a read-only long-term pin of an untouched page: reserved, so neither
        // pinned nor charged, and left alone by the unmap.
        Twin t = Twin.Of("linux61");
        ulong ps = t.PageSize;
        long vaddr = t.Both(h =>
        {
            ulong a = h.T.MmapAnonymous(4 * ps);
            Assert.Equal(0, h.T.Sys.ReadMemory(a, new byte[4 * ps]));
            return (long)a;
        }, "mmap and read");
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0, (ulong)vaddr, ps, DmaMapFlags.Read), "map the zero page"));
        Assert.Equal(0UL, t.Lane.T.LockedVmPages);
        Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0, ps).Ret, "unmap"));
        t.AssertLanesTaken();
    }

    [Theory]
    [InlineData("one-domain", "pin")]
    [InlineData("one-domain", "lock_acct")]
    [InlineData("one-domain", "iommu_map")]
    [InlineData("one-domain", "dma_alloc")]
    [InlineData("one-domain", null)]
    [InlineData("two-domains", "iommu_map")]
    [InlineData("two-domains", null)]
    [InlineData("pfnmap", "pin")]
    public void MapOnePage_NthFallibleStepFails_SameErrnoStateAndSiteCallsAsBatchPath(string config, string? site)
    {
        Twin t = Twin.Of(config);
        ulong ps = t.PageSize;
        long vaddr = t.Both(h =>
        {
            ulong a = h.T.MmapAnonymous(4 * ps, populate: true);
            if (config == "pfnmap")
            {
                Assert.Equal((long)(a + ps), h.T.Process.Mm!.MmapOtherMmio(a + ps, ps, MemoryProtection.Read | MemoryProtection.Write, true, false,
                    h.T.Machine.AllocateMmioPfns(1)));
            }
            return (long)a;
        }, "mmap");
        Assert.Equal(0, t.Both(h => h.T.Map(h.C, Iova0 + (4 * ps), (ulong)vaddr + (2 * ps), ps), "a mapping made before"));
        ulong target = config == "pfnmap" ? (ulong)vaddr + ps : (ulong)vaddr;
        int failures = 0;
        for (int n = 1; ; n++)
        {
            Assert.True(n < 100, "MAP never succeeded");
            long ret = t.Both(h =>
            {
                h.T.Host.Faults.Arm(n, site is null ? null : FaultSite.Named(site));
                return h.T.Map(h.C, Iova0, target, ps);
            }, $"{site ?? "any"} n={n}");
            Assert.Equal(t.Batch.T.Host.Faults.Fired, t.Lane.T.Host.Faults.Fired);
            Assert.Equal(t.Batch.T.Host.Faults.Calls, t.Lane.T.Host.Faults.Calls);
            bool fired = t.Lane.T.Host.Faults.Fired;
            t.Lane.T.Host.Faults.Arm(0);
            t.Batch.T.Host.Faults.Arm(0);
            if (ret == 0)
            {
                Assert.Equal(0, t.Both(h => h.T.Unmap(h.C, Iova0, ps).Ret, $"unmap after n={n}"));
                if (!fired)
                {
                    break;
                }
                continue;
            }
            Assert.True(fired, $"n={n}: {ErrnoExtensions.FromReturn(ret)} without an injected failure");
            failures++;
        }
        Assert.True(failures > 0 || (config == "pfnmap" && site == "pin"), "no failure point was swept");
        t.AssertLanesTaken();
    }

    /// <summary>Two hosts built alike, one with the lanes on and one with them off, driven call for call.</summary>
    private sealed class Twin
    {
        private Twin(Side lane, Side batch)
        {
            Lane = lane;
            Batch = batch;
        }

        public Side Lane { get; }

        public Side Batch { get; }

        public ulong PageSize => Lane.T.PageSize;

        public static Twin Of(string config, ulong memlock = ulong.MaxValue)
        {
            var twin = new Twin(Side.Build(config, memlock), Side.Build(config, memlock));
            twin.Batch.T.Backend(twin.Batch.C).TestHooks.UseBatchPathsForTest();
            twin.AssertSame("setup");
            return twin;
        }

        // The call on both hosts: the same return, the same refusal, the same state after.
        public long Both(Func<Side, long> call, string what)
        {
            long a = call(Lane);
            long b = call(Batch);
            Assert.True(a == b, $"{what}: the lane returned {a}, the batch path {b}");
            Refusal ra = Lane.T.Process.LastRefusal;
            Refusal rb = Batch.T.Process.LastRefusal;
            if (!ra.Equals(rb))
            {
                Assert.Fail($"{what}: the lane refused with '{Describe(ra)}', the batch path with '{Describe(rb)}'");
            }
            AssertSame(what);
            return a;
        }

        private static string Describe(Refusal r) => r.IsSet ? r.ToString() : "nothing";

        public void AssertLanesTaken()
        {
            Assert.True(Lane.T.Backend(Lane.C).TestHooks.OnePageLanesTaken > 0, "the lanes were never taken");
            Assert.Equal(0, Batch.T.Backend(Batch.C).TestHooks.OnePageLanesTaken);
        }

        private void AssertSame(string what)
        {
            StateDigest a = StateDigest.Of(Lane.T.Host);
            StateDigest b = StateDigest.Of(Batch.T.Host);
            if (!a.Equals(b))
            {
                Assert.Fail($"{what}: {a.FirstDifference(b)}");
            }
            Assert.Equal(Batch.T.LockedVmPages, Lane.T.LockedVmPages);
            Assert.Equal(Batch.T.TotalPins, Lane.T.TotalPins);
            Assert.Equal(Batch.T.PinnedFrames, Lane.T.PinnedFrames);
            // The digest leaves PG_dirty out (a failed MAP may change it in Linux too); the lanes must still set it
            // exactly where the batch path does.
            Assert.Equal(Batch.T.Host.Machine.Memory.DirtyRunsForTests(), Lane.T.Host.Machine.Memory.DirtyRunsForTests());
        }
    }

    /// <summary>One host of a twin and its container.</summary>
    private sealed record Side(Type1TestHost T, int C)
    {
        public static Side Build(string config, ulong memlock)
        {
            var other = IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);
            Type1TestHost t = config switch
            {
                "two-domains" => new Type1TestHost(memlock: memlock, otherIommu: other),
                "scattered" => new Type1TestHost(memlock: memlock, layout: FrameLayout.ScatteredRuns(1, 5)),
                "64k-host" => new Type1TestHost(memlock: memlock, pageShift: 16, iommu: IommuHardwareProfile.SmmuV3),
                "pfnmap" => new Type1TestHost(memlock: memlock, kernel: KernelSettings.Default with { Profile = KernelSettings.Linux618 }),
                "linux61" => new Type1TestHost(memlock: memlock, kernel: KernelSettings.Default with { Profile = KernelSettings.Linux61 }),
                _ => new Type1TestHost(memlock: memlock),
            };
            (int c, _) = t.Container(type: config == "v1" ? VfioExtension.Type1Iommu : VfioExtension.Type1v2Iommu);
            if (config == "two-domains")
            {
                t.AddGroup(c, Type1TestHost.OtherIommuGroup);
            }
            return new Side(t, c);
        }
    }
}
