using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>
/// The bulk populate on 1-page scattered memory (<c>PhysicalMemory.AllocateSlotsInBulkLocked</c>, issue 16) against the
/// per-run allocator it stands in for. Each case runs twice on twin hosts: once as is, and once with the alloc fault
/// site armed at a call that never comes, which keeps the bulk path off (it runs only while nothing is armed) and
/// changes nothing else. Both must leave the same page tables, reference counts, free frames and allocator cursor
/// (the allocations that follow, in order), through holes in the slots, frames freed behind the cursor, RAM running out
/// part-way (ENOMEM, which MAP_POPULATE ignores) and the lowest-first fallback once the permutation is used up.
/// </summary>
public class BulkPopulateTests
{
    [Theory]
    [InlineData(64UL, 7UL)]
    [InlineData(96UL, 0x5ca7UL)]
    [InlineData(33UL, 3UL)]
    public void MmapPopulate_Bulk_LeavesWhatThePerRunAllocatorLeaves(ulong ramMiB, ulong seed) =>
        AssertBulkLeavesWhatPerRunLeaves(ramMiB, seed, batch: null);

    // Batches small enough that each populate takes several: the positions of each next batch are computed on another
    // thread while the one before is taken (PhysicalMemory.FillAhead), used whole, in part (a batch that found slots
    // taken wants more than was computed ahead, or fewer) or not at all (RAM or the permutation ran out first).
    [Theory]
    [InlineData(96UL, 0x5ca7UL, 4096)]
    [InlineData(96UL, 11UL, 5000)]
    [InlineData(128UL, 7UL, 4099)]
    public void MmapPopulate_BulkInSeveralBatches_LeavesWhatThePerRunAllocatorLeaves(ulong ramMiB, ulong seed, int batch) =>
        AssertBulkLeavesWhatPerRunLeaves(ramMiB, seed, batch);

    private static void AssertBulkLeavesWhatPerRunLeaves(ulong ramMiB, ulong seed, int? batch)
    {
        var bulk = new Twin(ramMiB, seed, perRun: false);
        if (batch is { } b)
        {
            bulk.Memory.BulkBatchForTests = b;
        }
        var perRun = new Twin(ramMiB, seed, perRun: true);
        ulong frames = ramMiB * MiB / 4096;
        foreach (Twin t in new[] { bulk, perRun })
        {
            // A partly used host: a huge page, scattered single pages (some unmapped again, freeing frames the cursor
            // has passed), then a populate of half of RAM, part of it unmapped, and a populate of more than is free.
            t.Map(2 * MiB, MmapFlags.HugeTlb | MmapFlags.Populate);
            ulong small = t.Map(64 * 4096, MmapFlags.None);
            for (ulong i = 0; i < 64; i += 3)
            {
                t.Write(small + (i * 4096));
            }
            Assert.Equal(0, t.Mm.Munmap(small + (8 * 4096), 16 * 4096));
            ulong half = t.Map(frames / 2 * 4096, MmapFlags.Populate);
            // The last page's frame is the slot at the cursor: freed, the next populate takes it again first.
            Assert.Equal(0, t.Mm.Munmap(half + ((frames / 2) - 1) * 4096, 4096));
            Assert.Equal(0, t.Mm.Munmap(half + (frames / 8 * 4096), frames / 16 * 4096));
            t.Map(frames * 4096, MmapFlags.Populate);
            Assert.Equal(0UL, t.Memory.FreeFrameCount);
        }
        Assert.True(bulk.Memory.BulkTakenForTests > frames / 4, $"the bulk path took {bulk.Memory.BulkTakenForTests} frames");
        Assert.True(batch is null || bulk.Memory.FilledAheadForTests >= (ulong)batch, $"{bulk.Memory.FilledAheadForTests} positions computed ahead");
        Assert.Equal(0UL, perRun.Memory.BulkTakenForTests);
        Assert.False(perRun.Faults.Fired);
        bulk.Memory.AssertFrameMapsValidForTests();
        perRun.Memory.AssertFrameMapsValidForTests();
        Assert.Equal(perRun.PageTable(), bulk.PageTable());
        for (ulong pfn = 0; pfn < frames; pfn++)
        {
            Assert.Equal(perRun.Memory.RefCount(new Pfn(pfn)), bulk.Memory.RefCount(new Pfn(pfn)));
        }
        // Free a part of the big mapping again: the allocations that follow show the cursor and the free set agree.
        foreach (Twin t in new[] { bulk, perRun })
        {
            Assert.Equal(0, t.Mm.Munmap(t.Mappings[^1].Start + (frames / 4 * 4096), frames / 8 * 4096));
        }
        Assert.Equal(perRun.Memory.FreeFrameCount, bulk.Memory.FreeFrameCount);
        Assert.Equal(perRun.AllocateAll(), bulk.AllocateAll());
    }

    // A populate on a fresh host where all of it goes through the bulk path, run out of RAM, and the runs handed out
    // through the array form of AllocateRuns with a buffer large enough for a batch.
    // On a fresh host every slot of the first batch is free and the bulk path takes the last run too; on a used one
    // the per-run loop finishes what slots found taken left wanting.
    [Theory]
    [InlineData(1UL, true)]
    [InlineData(0x77UL, true)]
    [InlineData(5UL, false)]
    public void AllocateRuns_LargeBuffer_TakesWhatOneTryAllocateRunAfterAnotherTakes(ulong seed, bool used)
    {
        var layout = FrameLayout.ScatteredRuns(1, seed);
        var bulk = new PhysicalMemory(12, (48UL << 20) + (7 << 12), layout, new FaultInjector());
        var single = new PhysicalMemory(12, (48UL << 20) + (7 << 12), layout, new FaultInjector());
        foreach (PhysicalMemory mem in used ? new[] { bulk, single } : [])
        {
            Assert.True(mem.TryAllocateBlock(512, 512, out _));
            for (int i = 0; i < 100; i++)
            {
                Assert.True(mem.TryAllocateRun(1, out PfnRun r));
                if (i % 4 == 0)
                {
                    mem.DropRefs(r);
                }
            }
        }
        var buffer = new PfnRun[1 << 14];
        foreach (ulong want in new ulong[] { 9000, 5000, ulong.MaxValue })
        {
            var got = new List<PfnRun>();
            ulong left = want;
            bool failed = false;
            while (left > 0 && !failed)
            {
                int n = bulk.AllocateRuns(left, buffer, out failed);
                got.AddRange(buffer[..n]);
                left -= (ulong)n;
            }
            List<PfnRun> expected = HostFixture.AllocateSingly(single, want, out bool singleFailed);
            Assert.Equal(expected, got);
            Assert.Equal(singleFailed, failed);
            Assert.Equal(single.FreeFrameCount, bulk.FreeFrameCount);
            bulk.AssertFrameMapsValidForTests();
            if (want != ulong.MaxValue)
            {
                // The last frame taken is the slot at the cursor: freed, the next request takes it again first.
                bulk.DropRefs(got[^1]);
                single.DropRefs(got[^1]);
            }
        }
        Assert.True(bulk.BulkTakenForTests > 8000, $"the bulk path took {bulk.BulkTakenForTests} frames");
        Assert.Equal(0UL, bulk.FreeFrameCount);
    }

    // A host too large for the bitmap to pay (1 PiB: 2^38 slots, 2^32 words) takes even a large request run by run, the
    // same runs as TryAllocateRun.
    [Fact]
    public void AllocateRuns_HugeHost_TakesRunByRun()
    {
        var layout = FrameLayout.ScatteredRuns(1, 9);
        var bulk = new PhysicalMemory(12, 1UL << 50, layout, new FaultInjector());
        var single = new PhysicalMemory(12, 1UL << 50, layout, new FaultInjector());
        var buffer = new PfnRun[8192];
        Assert.Equal(8192, bulk.AllocateRuns(8192, buffer, out bool failed));
        Assert.False(failed);
        for (int i = 0; i < buffer.Length; i++)
        {
            Assert.True(single.TryAllocateRun(8192 - (ulong)i, out PfnRun r));
            Assert.Equal(r, buffer[i]);
        }
        Assert.Equal(0UL, bulk.BulkTakenForTests);
        Assert.Equal(single.FreeFrameCount, bulk.FreeFrameCount);
    }

    private sealed class Twin
    {
        public Twin(ulong ramMiB, ulong seed, bool perRun)
        {
            Faults = new FaultInjector();
            Machine = new Machine(ramMiB * MiB, 12, FrameLayout.ScatteredRuns(1, seed), faults: Faults);
            Mm = Machine.Spawn("bulk").Mm!;
            if (perRun)
            {
                Faults.Arm(long.MaxValue, FaultSite.Alloc);
            }
        }

        public FaultInjector Faults { get; }

        public Machine Machine { get; }

        public AddressSpace Mm { get; }

        public PhysicalMemory Memory => Machine.Memory;

        public List<(ulong Start, ulong Pages)> Mappings { get; } = [];

        public ulong Map(ulong size, MmapFlags extra)
        {
            ulong start = MmapAnon(Mm, size, extra: extra);
            Mappings.Add((start, (size + (2 * MiB) - 1) / 4096));
            return start;
        }

        public void Write(ulong vaddr) => ScatteredLayoutPinTests.WriteByte(Mm, vaddr);

        // Every page of every mapping: its frame, or none.
        public List<long> PageTable()
        {
            var ptes = new List<long>();
            Mm.MmapReadLock();
            try
            {
                foreach ((ulong start, ulong pages) in Mappings)
                {
                    for (ulong i = 0; i < pages; i++)
                    {
                        ptes.Add(Mm.TryTranslateLocked(new HostVirtAddr(start + (i * 4096)), out Pte pte) ? (long)pte.Pfn.Value : -1);
                    }
                }
            }
            finally
            {
                Mm.MmapReadUnlock();
            }
            return ptes;
        }

        // Single-frame allocations until RAM runs out, in order.
        public List<ulong> AllocateAll()
        {
            var got = new List<ulong>();
            while (Memory.TryAllocateRun(1, out PfnRun r))
            {
                got.Add(r.First.Value);
            }
            return got;
        }
    }
}
