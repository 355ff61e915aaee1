using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>Pinning and RLIMIT_MEMLOCK accounting of MAP (spec §2.9, §3.2, §3.3, §4.4-5): the limit is
/// exact and synchronous (seed 004), chunks end at physical discontinuities and at page-backed/PFNMAP
/// switches, <c>disable_hugepages</c> maps page by page, and PFNMAP memory is neither pinned nor charged.</summary>
public sealed class AccountingTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;

    // ---- RLIMIT_MEMLOCK ----

    [Fact]
    public void MapDma_MemlockExactlyEqualToMapping_Succeeds()
    {
        var t = new Type1TestHost(memlock: 4 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
    }

    [Theory]
    [InlineData(4 * MiB - 4 * KiB, 4 * MiB)]
    [InlineData(4 * MiB, 4 * MiB + 4 * KiB)]
    [InlineData(0UL, 4 * KiB)]
    public void MapDma_MemlockOnePageShort_ReturnsENOMEMAndLeavesNothing(ulong memlock, ulong size)
    {
        var t = new Type1TestHost(memlock: memlock);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(8 * MiB);

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, buf, size));

        AssertEmpty(t, c);
    }

    [Fact]
    public void MapDma_MemlockNotPageMultiple_RoundsLimitDown()
    {
        // limit = RLIMIT_MEMLOCK >> PAGE_SHIFT.
        var t = new Type1TestHost(memlock: (4 * MiB) - 1);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, buf, 4 * MiB));
        Assert.Equal(0, t.Map(c, 0, buf, (4 * MiB) - (4 * KiB)));

        Assert.Equal(1023UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_LimitHitInSecondMap_ReturnsENOMEMAndKeepsFirst()
    {
        var t = new Type1TestHost(memlock: 4 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(8 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 3 * MiB));
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = d.TotalEntries;

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 4 * MiB, buf + (4 * MiB), 2 * MiB));

        Assert.Equal(768UL, t.LockedVmPages);
        Assert.Equal(768UL, t.TotalPins);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(65534UL, t.Backend(c).DmaAvail);
        Assert.Equal(entries, d.TotalEntries);
        Assert.False(d.Translate(new Iova(4 * MiB), write: false).Ok);
        // What is left fits exactly.
        Assert.Equal(0, t.Map(c, 4 * MiB, buf + (4 * MiB), 1 * MiB));
        Assert.Equal(1024UL, t.LockedVmPages);
    }

    [Fact]
    public void UnmapDma_AfterMaps_LockedVmBackToZero()
    {
        var t = new Type1TestHost(memlock: 4 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Map(c, 1 * MiB, buf + (1 * MiB), 3 * MiB));
        Assert.Equal(1024UL, t.LockedVmPages);

        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB).Ret);
        Assert.Equal(768UL, t.LockedVmPages);
        Assert.Equal(0, t.Unmap(c, 1 * MiB, 3 * MiB).Ret);

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        // The limit is free again.
        Assert.Equal(0, t.Map(c, 8 * MiB, buf, 4 * MiB));
    }

    [Fact]
    public void MapDma_LimitRaisedAfterFailure_Succeeds()
    {
        var t = new Type1TestHost(memlock: 1 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, buf, 2 * MiB));

        t.Process.MemlockLimitBytes = 2 * MiB;

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(512UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_Hugetlb_ChargesPerPageSizePage()
    {
        var t = new Type1TestHost(memlock: 4 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_FromForkedChild_ChargesChildMmAgainstChildLimit()
    {
        var t = new Type1TestHost(memlock: 2 * MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        AddressSpace childMm = child!.Mm!;
        child.MemlockLimitBytes = 1 * MiB;

        Assert.Equal(Errno.ENOMEM.AsReturn(), child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(4 * MiB, buf + (2 * MiB), 2 * MiB)));
        Assert.Equal(0, child.Syscalls.Ioctl(c, VfioIoctl.IommuMapDma, MapArg(4 * MiB, buf + (2 * MiB), 1 * MiB)));

        Assert.Equal(256UL, childMm.LockedVm);
        Assert.Equal(256UL, t.LockedVmPages);
        // Unmapping by the parent un-charges the owner, the child.
        Assert.Equal(0, t.Unmap(c, 4 * MiB, 1 * MiB).Ret);
        Assert.Equal(0UL, childMm.LockedVm);
        Assert.Equal(256UL, t.LockedVmPages);
    }

    // ---- chunks ----

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(42UL)]
    public void MapDma_ScatteredFrames_OneIommuMapPerContiguousRun(ulong seed)
    {
        var t = new Type1TestHost(layout: FrameLayout.ScatteredRuns(16, seed));
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        List<(ulong Iova, ulong Phys, ulong Size)> expected = PhysicalRuns(t, buf, 4 * MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        Assert.True(expected.Count > 1, "the layout should scatter the buffer");
        Assert.Equal(expected, calls);
        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.PinnedFrames);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        foreach ((ulong iova, ulong phys, ulong _) in expected)
        {
            Assert.Equal(new PhysAddr(phys), d.IovaToPhys(new Iova(iova)));
        }
        Assert.Equal(0, t.Unmap(c, 0, 4 * MiB).Ret);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_ContiguousFrames_OneIommuMap()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        List<(ulong Iova, ulong Phys, ulong Size)> expected = PhysicalRuns(t, buf, 4 * MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        Assert.Single(expected);
        Assert.Equal(expected, calls);
    }

    [Fact]
    public void MapDma_ScatteredFramesTwoDomains_EachChunkMappedIntoBoth()
    {
        var t = new Type1TestHost(layout: FrameLayout.ScatteredRuns(16, 5),
            otherIommu: IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M));
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        ulong buf = t.MmapAnonymous(2 * MiB, populate: true);
        List<(ulong Iova, ulong Phys, ulong Size)> expected = PhysicalRuns(t, buf, 2 * MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));

        Assert.Equal(expected.SelectMany(r => new[] { r, r }), calls);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(512UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_DisableHugepagesOnHugetlb_MapsOnly4KIoptes()
    {
        var t = new Type1TestHost(kernel: KernelSettings.Default with { DisableHugepages = true });
        (int c, _) = t.Container();
        ulong buf = t.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(1024UL, d.EntryCount(4 * KiB));
        Assert.Equal(0UL, d.EntryCount(2 * MiB));
        Assert.Equal(1024, calls.Count);
        Assert.All(calls, x => Assert.Equal(4 * KiB, x.Size));
        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_HugetlbWithHugepages_Maps2MIoptes()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(2UL, d.EntryCount(2 * MiB));
        Assert.Equal(0UL, d.EntryCount(4 * KiB));
        Assert.InRange(calls.Count, 1, 2);
        Assert.Equal(1024UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_HugetlbAtUnalignedIova_FallsBackTo4KIoptes()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapHuge(2 * MiB, MmapFlags.Huge2MiB);

        Assert.Equal(0, t.Map(c, 0x1000, buf, 2 * MiB));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(0UL, d.EntryCount(2 * MiB));
        Assert.Equal(512UL, d.EntryCount(4 * KiB));
    }

    // ---- PFNMAP ----
    // Another driver's PFNMAP, walked as upstream does (spec §3.2). The default seeds profile refuses it
    // under strict_mmio_maps (ENODEV, tests/DeviceMemory); linux-6.18 is the profile these describe.

    private static readonly KernelSettings Upstream = KernelSettings.Default with { Profile = KernelSettings.Linux618 };


    [Fact]
    public void MapDma_Pfnmap_MapsWithoutPinOrCharge()
    {
        var t = new Type1TestHost(memlock: 0, kernel: Upstream);
        (int c, _) = t.Container();
        Pfn first = t.Machine.AllocateMmioPfns(256);
        ulong buf = MmapPfnmap(t, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, refcounted: false, first);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0x200000, buf, 1 * MiB));

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(new PhysAddr((first.Value << 12) + 0x3000), d.IovaToPhys(new Iova(0x203000)));
        // Contiguous reserved pfns form one chunk.
        Assert.Equal([(0x200000UL, first.Value << 12, 1 * MiB)], calls);
        Assert.Equal(0, t.Unmap(c, 0x200000, 1 * MiB).Ret);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, d.TotalEntries);
    }

    [Fact]
    public void MapDma_RefcountedPfnmap_ReturnsEFAULT()
    {
        var t = new Type1TestHost(kernel: Upstream);
        (int c, _) = t.Container();
        ulong buf = MmapPfnmap(t, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, refcounted: true, default);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 1 * MiB));

        AssertEmpty(t, c);
    }

    [Fact]
    public void MapDma_ReadOnlyPfnmapWithWrite_ReturnsEFAULT()
    {
        var t = new Type1TestHost(kernel: Upstream);
        (int c, _) = t.Container();
        ulong buf = MmapPfnmap(t, 1 * MiB, MemoryProtection.Read, refcounted: false, t.Machine.AllocateMmioPfns(256));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Read));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_AnonymousThenPfnmap_ChunkEndsAtSwitchAndChargesOnlyRam()
    {
        var t = new Type1TestHost(kernel: Upstream);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB, populate: true);
        Pfn first = t.Machine.AllocateMmioPfns(256);
        Assert.Equal(buf + (1 * MiB), MmapPfnmap(t, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, refcounted: false, first, buf + (1 * MiB)));
        List<(ulong Iova, ulong Phys, ulong Size)> ram = PhysicalRuns(t, buf, 1 * MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(256UL, t.TotalPins);
        Assert.Equal([.. ram, (1 * MiB, first.Value << 12, 1 * MiB)], calls);
        Assert.Equal(0, t.Unmap(c, 0, 2 * MiB).Ret);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_PfnmapThenAnonymous_ChunkEndsAtSwitch()
    {
        var t = new Type1TestHost(kernel: Upstream);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB, populate: true);
        Pfn first = t.Machine.AllocateMmioPfns(256);
        Assert.Equal(buf, MmapPfnmap(t, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, refcounted: false, first, buf));
        List<(ulong Iova, ulong Phys, ulong Size)> ram = PhysicalRuns(t, buf + (1 * MiB), 1 * MiB);
        List<(ulong Iova, ulong Phys, ulong Size)> calls = IommuMapCalls(t);

        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(256UL, t.TotalPins);
        Assert.Equal([(0UL, first.Value << 12, 1 * MiB), .. ram.Select(r => (r.Iova + (1 * MiB), r.Phys, r.Size))], calls);
    }

    private static byte[] MapArg(ulong iova, ulong vaddr, ulong size)
    {
        var buf = new byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Read | DmaMapFlags.Write, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return buf;
    }

    private static ulong MmapPfnmap(Type1TestHost t, ulong size, MemoryProtection prot, bool refcounted, Pfn first, ulong at = 0)
    {
        long ret = t.Process.Mm!.MmapOtherMmio(at, size, prot, at != 0, refcounted, first);
        Assert.True(ret >= 0, $"mmap pfnmap failed: {ErrnoExtensions.FromReturn(ret)}");
        return (ulong)ret;
    }

    // The physically contiguous runs of [vaddr, vaddr+size) of the process, as (iova from 0, phys, size).
    private static List<(ulong Iova, ulong Phys, ulong Size)> PhysicalRuns(Type1TestHost t, ulong vaddr, ulong size)
    {
        AddressSpace mm = t.Process.Mm!;
        var runs = new List<(ulong Iova, ulong Phys, ulong Size)>();
        mm.MmapReadLock();
        try
        {
            for (ulong off = 0; off < size; off += t.PageSize)
            {
                Assert.True(mm.TryTranslateLocked(new HostVirtAddr(vaddr + off), out Pte pte), "populate the buffer first");
                ulong phys = pte.Pfn.Value << t.Machine.PageShift;
                if (runs.Count > 0 && runs[^1].Phys + runs[^1].Size == phys)
                {
                    runs[^1] = (runs[^1].Iova, runs[^1].Phys, runs[^1].Size + t.PageSize);
                }
                else
                {
                    runs.Add((off, phys, t.PageSize));
                }
            }
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        return runs;
    }

    // Records every successful iommu_map call from now on (all domains, in order).
    private static List<(ulong Iova, ulong Phys, ulong Size)> IommuMapCalls(Type1TestHost t)
    {
        var calls = new List<(ulong, ulong, ulong)>();
        t.Host.Trace.Subscribe(e =>
        {
            if (e.Kind == "iommu_map")
            {
                calls.Add((Field(e, "iova"), Field(e, "phys"), Field(e, "size")));
            }
        });
        return calls;
    }

    private static ulong Field(TraceEvent e, string name) => Convert.ToUInt64(e.Fields.First(f => f.Key == name).Value, System.Globalization.CultureInfo.InvariantCulture);

    private static void AssertEmpty(Type1TestHost t, int c)
    {
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
    }
}
