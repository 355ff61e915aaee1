using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// MAP_DMA a GUP batch at a time and UNMAP_DMA streamed in bounded batches (issue 16) on host frames shattered into
/// 1-page runs, where a chunk is a page: the same pins, charges, IOPTEs, errors and end states as the kernel's
/// chunk-by-chunk loop, across many batches and at the batch's error boundaries.
/// </summary>
public sealed class MapDmaBatchTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Iova0 = 0x1000_0000;

    [Fact]
    public void MapDma_ShatteredOverManyBatches_PinsChargesAndMapsEveryPageAndUnmapReleasesThemInBatches()
    {
        var t = new Type1TestHost(layout: FrameLayout.ScatteredRuns(1, 5));
        (int c, _) = t.Container();
        const ulong Pages = 4096;
        ulong size = Pages * t.PageSize;
        ulong vaddr = t.MmapAnonymous(size, populate: true);

        Assert.Equal(0, t.Map(c, Iova0, vaddr, size));

        Assert.Equal(Pages, t.LockedVmPages);
        Assert.Equal(Pages, t.TotalPins);
        Assert.Equal(Pages, t.PinnedFrames);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(Pages, d.TotalEntries);
        for (ulong p = 0; p < Pages; p += 97)
        {
            Pfn pfn = Pfn.FromPhys(d.IovaToPhys(new Iova(Iova0 + (p * t.PageSize))), 12);
            Assert.Equal(1UL, t.Machine.Memory.PinCount(pfn));
        }
        long syncs = d.IotlbSyncCount;
        int runs = d.RunCount;
        Assert.True(runs > 512, $"{runs} IOMMU runs: the unmap must take more than one batch");

        Assert.Equal(size, t.Unmap(c, Iova0, size).Size);

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.True(d.IsEmpty);
        Assert.Empty(d.PendingInvalidations());
        // One flush per batch of 512 runs, as the kernel flushes every 512 regions.
        Assert.Equal(syncs + ((runs + 511) / 512), d.IotlbSyncCount);
    }

    [Fact]
    public void UnmapDma_ShatteredPastTheUnpinStreamingThreshold_EndsAsOnePassWouldWithEveryFrameDirtyAndKept()
    {
        // 270,000 1-page runs: the pin map is dense, so the unmap unpins its flushed batches every 16,384 pieces
        // (DmaPinning.UnmapUnpinLocked) rather than all after the last flush. The counts, the dirty bits and the frames
        // the process still maps must end as one pass would leave them.
        var t = new Type1TestHost(memory: 1536 * MiB, layout: FrameLayout.ScatteredRuns(1, 5));
        (int c, _) = t.Container();
        const ulong Pages = 270_000;
        ulong size = Pages * t.PageSize;
        ulong vaddr = t.MmapAnonymous(size, populate: true);
        ulong free = t.Machine.Memory.FreeFrameCount;
        Assert.Equal(0, t.Map(c, Iova0, vaddr, size));
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        var frames = new List<Pfn>();
        for (ulong p = 0; p < Pages; p += 997)
        {
            frames.Add(Pfn.FromPhys(d.IovaToPhys(new Iova(Iova0 + (p * t.PageSize))), 12));
        }
        Assert.True(t.Machine.Memory.DenseWindowsForTests().Pins > 0, "the pin map must have gone dense for the streamed unpin");

        Assert.Equal(size, t.Unmap(c, Iova0, size).Size);

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.True(d.IsEmpty);
        Assert.All(frames, f => Assert.Equal(0UL, t.Machine.Memory.PinCount(f)));
        Assert.All(frames, f => Assert.True(t.Machine.Memory.IsDirty(f), $"{f} was mapped writable: dirty after unpin"));
        Assert.Equal(free, t.Machine.Memory.FreeFrameCount);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(4UL)]
    public void UnmapDma_ShatteredAfterTheProcessUnmappedPartOfIt_FreesExactlyTheFramesNothingElseHolds(ulong runPages)
    {
        // Frames whose process unmapped them while they were pinned are held by their pin alone: the batch unpin must
        // read their reference counts and free them (PhysicalMemory's _orphanPins), over streamed flushes of dense
        // windows (1-page runs) and one sorted pass (4-page runs), and keep every frame the process still maps.
        var t = new Type1TestHost(memory: 1536 * MiB, layout: FrameLayout.ScatteredRuns(runPages, 7));
        (int c, _) = t.Container();
        const ulong Pages = 70_000;
        ulong size = Pages * t.PageSize;
        ulong vaddr = t.MmapAnonymous(size, populate: true);
        ulong free = t.Machine.Memory.FreeFrameCount;
        Assert.Equal(0, t.Map(c, Iova0, vaddr, size));
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        var kept = new List<Pfn>();
        var gone = new List<Pfn>();
        // The middle third leaves the process: its frames stay for their pins.
        ulong cutFrom = Pages / 3;
        ulong cutPages = Pages / 3;
        for (ulong p = 0; p < Pages; p += 331)
        {
            Pfn f = Pfn.FromPhys(d.IovaToPhys(new Iova(Iova0 + (p * t.PageSize))), 12);
            (p >= cutFrom && p < cutFrom + cutPages ? gone : kept).Add(f);
        }
        Assert.Equal(0, t.Process.Mm!.Munmap(vaddr + (cutFrom * t.PageSize), cutPages * t.PageSize));
        Assert.Equal(free, t.Machine.Memory.FreeFrameCount);

        Assert.Equal(size, t.Unmap(c, Iova0, size).Size);

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(free + cutPages, t.Machine.Memory.FreeFrameCount);
        Assert.All(kept, f => Assert.Equal(1UL, t.Machine.Memory.RefCount(f)));
        Assert.All(kept, f => Assert.True(t.Machine.Memory.IsDirty(f), $"{f} was mapped writable: dirty after unpin"));
        Assert.All(gone, f => Assert.False(t.Machine.Memory.IsDirty(f), $"{f} was freed: its dirty bit goes with it"));
        Assert.Empty(new InvariantChecker(t.Host).Check());
        // Nothing is left pinned without a reference: the next MAP and UNMAP of what remains free nothing.
        Assert.Equal(0, t.Map(c, Iova0, vaddr, cutFrom * t.PageSize));
        Assert.Equal(cutFrom * t.PageSize, t.Unmap(c, Iova0, cutFrom * t.PageSize).Size);
        Assert.Equal(free + cutPages, t.Machine.Memory.FreeFrameCount);
    }

    [Theory]
    [InlineData(1UL, 101UL)]
    [InlineData(3UL, 200UL)]
    public void MapDma_ShatteredCrossingMemlockInsideABatch_ReturnsENOMEMWithNothingPinnedOrCharged(ulong runPages, ulong pages)
    {
        // A limit of 100 pages crossed inside one GUP batch: by the 101st 1-page run, or part-way through a 3-page run
        // in the middle of the batch (the mapping goes on well past it), where chunks are taken without PinChunkLocked.
        var t = new Type1TestHost(memlock: 100 * 4 * KiB, layout: FrameLayout.ScatteredRuns(runPages, 5));
        (int c, _) = t.Container();
        ulong vaddr = t.MmapAnonymous(1 * MiB, populate: true);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, Iova0, vaddr, pages * 4 * KiB));

        // Refused by the crossing chunk's own limit check, not by the batch's charge after it: the batch's one limit
        // check for the rest of the mapping (DmaPinning.TakeChunksWithinBatchLocked) fails here, so each chunk is checked.
        Refusal refusal = Refusals.Current;
        Assert.Equal("vfio_pin_pages_remote", refusal.Check);
        Assert.EndsWith("over RLIMIT_MEMLOCK 100 pages", refusal.Reason);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.True(d.IsEmpty);
        // The page before the one that crosses the limit is still allowed.
        Assert.Equal(0, t.Map(c, Iova0, vaddr, 100 * 4 * KiB));
        Assert.Equal(100UL, t.LockedVmPages);
        Assert.Equal(100UL, t.TotalPins);
        Assert.Equal(100UL, d.TotalEntries);
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(3UL)]
    public void MapDma_ShatteredFromAndToTheMiddleOfRuns_MapsEachPageToItsOwnFrameWithOnePinAndOneCharge(ulong runPages)
    {
        // The chunks that end inside a GUP batch are taken without PinChunkLocked (DmaPinning.TakeChunksWithinBatchLocked):
        // a mapping that starts and ends inside physically contiguous runs, over many batches, must still map every
        // page to the frame the process maps there, pin and charge it once, and unmap to nothing.
        var t = new Type1TestHost(layout: FrameLayout.ScatteredRuns(runPages, 11));
        (int c, _) = t.Container();
        const ulong Pages = 5001;
        ulong region = t.MmapAnonymous((Pages + 2) * t.PageSize, populate: true);
        ulong vaddr = region + t.PageSize;
        ulong size = Pages * t.PageSize;

        Assert.Equal(0, t.Map(c, Iova0, vaddr, size));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(Pages, t.LockedVmPages);
        Assert.Equal(Pages, t.TotalPins);
        Assert.Equal(Pages, d.TotalEntries);
        AddressSpace mm = t.Process.Mm!;
        mm.MmapReadLock();
        try
        {
            for (ulong p = 0; p < Pages; p++)
            {
                Assert.True(mm.TryTranslateLocked(new HostVirtAddr(vaddr + (p * t.PageSize)), out Pte pte));
                Assert.Equal(pte.Pfn, Pfn.FromPhys(d.IovaToPhys(new Iova(Iova0 + (p * t.PageSize))), 12));
                Assert.Equal(1UL, t.Machine.Memory.PinCount(pte.Pfn));
            }
            Assert.True(mm.TryTranslateLocked(new HostVirtAddr(region), out Pte before));
            Assert.Equal(0UL, t.Machine.Memory.PinCount(before.Pfn));
            Assert.True(mm.TryTranslateLocked(new HostVirtAddr(vaddr + size), out Pte after));
            Assert.Equal(0UL, t.Machine.Memory.PinCount(after.Pfn));
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        Assert.Empty(new InvariantChecker(t.Host).Check());

        Assert.Equal(size, t.Unmap(c, Iova0, size).Size);

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void UnmapDma_StreamedFastLane_OfAPfnmapOverReservedRam_UnpinsNothing()
    {
        // Another driver's PFNMAP over PageReserved RAM frames (linux-6.18 walks it; never pinned or charged): the
        // streamed unmap's sink sees RAM frames clear of the zero frame, which pass its lock-free part of put_pfn's test,
        // so only the reserved map can keep them from being unpinned (DmaPinning.FrameSink; the batch then goes through
        // FilterPinnedLocked). A 4 KiB anonymous mapping beside it is pinned and unpinned as usual.
        var t = new Type1TestHost(kernel: KernelSettings.Default with { Profile = KernelSettings.Linux618 });
        (int c, _) = t.Container();
        var reserved = new Pfn(t.Machine.Memory.FrameCount - 512);
        t.Machine.Memory.Reserve(reserved, 256);
        long ret = t.Process.Mm!.MmapOtherMmio(0, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write, false, false, reserved);
        Assert.True(ret > 0, $"mmap pfnmap failed: {ErrnoExtensions.FromReturn(ret)}");
        ulong anon = t.MmapAnonymous(4 * KiB, populate: true);
        Assert.Equal(0, t.Map(c, Iova0, (ulong)ret, 1 * MiB));
        Assert.Equal(0, t.Map(c, Iova0 + (1 * MiB), anon, 4 * KiB));
        Assert.Equal(1UL, t.TotalPins);

        Assert.Equal(1 * MiB, t.Unmap(c, Iova0, 1 * MiB).Size);

        Assert.Equal(1UL, t.TotalPins);
        Assert.Equal(0UL, t.Machine.Memory.PinCount(reserved));
        Assert.Equal(4 * KiB, t.Unmap(c, Iova0 + (1 * MiB), 4 * KiB).Size);
        Assert.Equal((0UL, 0UL), (t.TotalPins, t.LockedVmPages));
        Assert.True(t.DomainOf(Type1TestHost.GpuGroup)!.IsEmpty);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    [Theory]
    [InlineData(1UL, KernelSettings.Seeds)]
    [InlineData(3UL, KernelSettings.Linux61)]
    public void UnmapDma_StreamedFastLane_EndsAsTheTracedReferencePath(ulong runPages, string profile)
    {
        // The streamed unmap's fast lane (IommuDomain.TryUnmapSyncStreamed, then put_pfn's test over the appended pieces)
        // against the reference path a traced host takes (runs collected into a list, each through put_pfn's test), on
        // twin hosts: a writable mapping over many unmap batches, and a read-only one of untouched memory whose pages
        // are the shared zero frame on linux-6.1 (never pinned: the pieces' test must leave it out). Everything the
        // unmaps leave must agree: sizes, pins and dirty bits frame by frame, charges, free frames, IOPTEs and flushes.
        var kernel = new KernelSettings(profile, []);
        var fast = new Type1TestHost(layout: FrameLayout.ScatteredRuns(runPages, 9), kernel: kernel);
        var traced = new Type1TestHost(layout: FrameLayout.ScatteredRuns(runPages, 9), kernel: kernel);
        int events = 0;
        traced.Host.Trace.Subscribe(_ => events++);
        const ulong Pages = 3000;
        ulong size = Pages * fast.PageSize;
        var frames = new List<Pfn>();
        foreach (Type1TestHost t in new[] { fast, traced })
        {
            (int c, _) = t.Container();
            ulong rw = t.MmapAnonymous(size, populate: true);
            ulong ro = t.MmapAnonymous(size);
            Assert.Equal(0, t.Map(c, Iova0, rw, size));
            Assert.Equal(0, t.Map(c, Iova0 + size, ro, size, DmaMapFlags.Read));
            IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
            if (t == fast)
            {
                for (ulong p = 0; p < 2 * Pages; p += 7)
                {
                    frames.Add(Pfn.FromPhys(d.IovaToPhys(new Iova(Iova0 + (p * t.PageSize))), 12));
                }
            }
            Assert.Equal(size, t.Unmap(c, Iova0, size).Size);
            Assert.Equal(size, t.Unmap(c, Iova0 + size, size).Size);
            Assert.True(d.IsEmpty);
        }
        Assert.True(events > 0, "the traced host must take the reference path");
        IommuDomain fd = fast.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain td = traced.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(td.IotlbSyncCount, fd.IotlbSyncCount);
        Assert.Equal((traced.LockedVmPages, traced.TotalPins, traced.PinnedFrames), (fast.LockedVmPages, fast.TotalPins, fast.PinnedFrames));
        Assert.Equal(traced.Machine.Memory.FreeFrameCount, fast.Machine.Memory.FreeFrameCount);
        Assert.All(frames, f => Assert.Equal((traced.Machine.Memory.PinCount(f), traced.Machine.Memory.IsDirty(f)), (fast.Machine.Memory.PinCount(f), fast.Machine.Memory.IsDirty(f))));
        Assert.Contains(frames, f => fast.Machine.Memory.IsDirty(f));
        Assert.Empty(new InvariantChecker(fast.Host).Check());
    }

    [Theory]
    [InlineData(1UL, KernelSettings.Linux61)]
    [InlineData(1UL, KernelSettings.Seeds)]
    [InlineData(2UL, KernelSettings.Linux61)]
    public void MapDma_WholeRunLane_EndsAsTheTracedChunkByChunkPath(ulong runPages, string profile)
    {
        // The MAP batch's lane for whole runs (DmaPinning.TakeWholeRunsLocked: a chunk per run, reserved where the frame is
        // outside RAM or the zero frame, charged otherwise) and the IOMMU's lane for one-page chunks
        // (IommuDomain.MapSmallestChunks, counted once per batch) against a traced twin host, whose MAP takes one chunk a
        // batch through the general loop: a read-only mapping of memory written every other page, so that under
        // linux-6.1 its batches alternate the process's own frames with the shared zero frame (reserved: neither pinned
        // nor charged), and under seeds every page is unshared into a frame of its own. The MAP must leave the same
        // charges, pins, IOPTEs and entry counts, and so must the UNMAP.
        var kernel = new KernelSettings(profile, []);
        var fast = new Type1TestHost(layout: FrameLayout.ScatteredRuns(runPages, 11), kernel: kernel);
        var traced = new Type1TestHost(layout: FrameLayout.ScatteredRuns(runPages, 11), kernel: kernel);
        int events = 0;
        traced.Host.Trace.Subscribe(_ => events++);
        const ulong Pages = 5000;
        var after = new List<(ulong Locked, ulong Pins, ulong Frames, ulong Entries, string Runs)>();
        foreach (Type1TestHost t in new[] { fast, traced })
        {
            (int c, _) = t.Container();
            ulong size = Pages * t.PageSize;
            ulong vaddr = t.MmapAnonymous(size);
            for (ulong p = 0; p < Pages; p += 2)
            {
                Assert.Equal(0, t.Sys.WriteMemory(vaddr + (p * t.PageSize), [(byte)(1 + (p % 255))]));
            }
            ulong rw = t.MmapAnonymous(size, populate: true);
            Assert.Equal(0, t.Map(c, Iova0, vaddr, size, DmaMapFlags.Read));
            Assert.Equal(0, t.Map(c, Iova0 + size, rw, size));
            IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
            after.Add((t.LockedVmPages, t.TotalPins, t.PinnedFrames, d.TotalEntries, string.Join(';', d.MappedRuns())));
            Assert.Equal(size, t.Unmap(c, Iova0, size).Size);
            Assert.Equal(size, t.Unmap(c, Iova0 + size, size).Size);
            Assert.True(d.IsEmpty);
            Assert.Equal((0UL, 0UL), (t.LockedVmPages, t.TotalPins));
            Assert.Empty(new InvariantChecker(t.Host).Check());
        }
        Assert.True(events > 0, "the traced host must take the chunk-by-chunk path");
        Assert.Equal(after[1], after[0]);
        // linux-6.1 pins and charges only the written half of the read-only mapping; seeds all of it.
        ulong readOnlyCharged = profile == KernelSettings.Linux61 ? Pages / 2 : Pages;
        Assert.Equal(readOnlyCharged + Pages, after[0].Locked);
        Assert.Equal(2 * Pages, after[0].Entries);
        Assert.Equal(traced.Machine.Memory.FreeFrameCount, fast.Machine.Memory.FreeFrameCount);
    }

    [Fact]
    public void MapDma_ChunkRefusedByALargePageDomainBeforeAHole_ReturnsTheIommusEINVALNotGupsEFAULT()
    {
        // The kernel maps each chunk before it pins the next, so the 64 KiB-page domain refuses the first 4 KiB chunk
        // before GUP reaches the hole past the read-only mapping (found by the differential campaign, seed 150).
        var other = IommuHardwareProfile.SmmuV3.WithOverrides(PageSizeBitmap.Size64K | PageSizeBitmap.Size512M);
        var t = new Type1TestHost(iommu: IommuHardwareProfile.AmdVi, otherIommu: other, layout: FrameLayout.ScatteredRuns(1, 7));
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        ulong region = t.MmapReadOnly(1 * MiB);
        ulong vaddr = (region + (64 * KiB) - 1) & ~((64 * KiB) - 1);
        Assert.Equal(0, t.Sys.Munmap(vaddr + (256 * KiB), 256 * KiB));

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, vaddr, 2 * MiB, DmaMapFlags.Read));

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.True(t.DomainOf(Type1TestHost.GpuGroup)!.IsEmpty);
        Assert.True(t.DomainOf(Type1TestHost.OtherIommuGroup)!.IsEmpty);
    }
}
