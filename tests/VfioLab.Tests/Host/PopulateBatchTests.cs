using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// The batched populate path (issue 16): <see cref="SlotPermutation.Fill"/> against the permutation's indexer, and
/// <see cref="PhysicalMemory.AllocateRuns"/> against one <see cref="PhysicalMemory.TryAllocateRun"/> after another on a
/// twin host: the same runs in the same order, the same failure at the same allocation when the alloc fault site fires,
/// the same free count, and valid frame maps (windows a large populate makes dense at their first take included).
/// </summary>
public class PopulateBatchTests
{
    [Theory]
    [InlineData(1000UL, 3UL)]
    [InlineData(1UL << 20, 7UL)]
    [InlineData(18_874_368UL, 7UL)]
    [InlineData(1UL << 38, 5UL)]
    public void Fill_EqualsTheIndexer(ulong count, ulong seed)
    {
        var perm = new SlotPermutation(count, seed);
        foreach ((ulong start, int length) in new[] { (0UL, 1), (0UL, 256), (5UL, 7), (count / 3, SlotPermutation.MaxFill), (count / 2, SlotPermutation.MaxFill + 500) })
        {
            int n = (int)Math.Min((ulong)length, count - start);
            var got = new ulong[n];
            perm.Fill(start, got);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(perm[start + (ulong)i], got[i]);
            }
        }
    }

    [Theory]
    [InlineData(1UL, 0x11UL, 0L)]
    [InlineData(1UL, 0x12UL, 5L)]
    [InlineData(1UL, 0x13UL, 3000L)]
    [InlineData(3UL, 0x14UL, 0L)]
    [InlineData(4UL, 0x15UL, 777L)]
    [InlineData(16UL, 0x16UL, 0L)]
    [InlineData(16UL, 0x17UL, 40L)]
    public void AllocateRuns_TakesWhatOneTryAllocateRunAfterAnotherTakes(ulong runPages, ulong seed, long failAt)
    {
        // 32 MiB and 5 frames: 2 windows and a short slot at the end; frames taken and freed first, so slots have holes.
        var batchedFaults = new FaultInjector();
        var singleFaults = new FaultInjector();
        var batched = new PhysicalMemory(12, (32UL << 20) + (5 << 12), FrameLayout.ScatteredRuns(runPages, seed), batchedFaults);
        var single = new PhysicalMemory(12, (32UL << 20) + (5 << 12), FrameLayout.ScatteredRuns(runPages, seed), singleFaults);
        foreach (PhysicalMemory mem in new[] { batched, single })
        {
            Assert.True(mem.TryAllocateBlock(512, 512, out _));
            var rng = new SplitMix64(seed);
            var taken = new List<PfnRun>();
            for (int i = 0; i < 300 && mem.TryAllocateRun(1 + (rng.Next() % 5), out PfnRun r); i++)
            {
                taken.Add(r);
            }
            foreach (PfnRun r in taken.Where((_, i) => i % 3 == 0))
            {
                mem.DropRefs(r);
            }
        }
        if (failAt > 0)
        {
            batchedFaults.Arm(failAt, FaultSite.Alloc);
            singleFaults.Arm(failAt, FaultSite.Alloc);
        }
        // Requests of every size: a populate of most of RAM (dense at the first take), then small ones until RAM runs out.
        ulong[] wants = [6000, 1, 2, 17, 300, ulong.MaxValue];
        var buffer = new PfnRun[64];
        foreach (ulong want in wants)
        {
            ulong left = want;
            bool batchedFailed = false;
            var batchedRuns = new List<PfnRun>();
            while (left > 0 && !batchedFailed)
            {
                int n = batched.AllocateRuns(left, buffer, out batchedFailed);
                Assert.True(n > 0 || batchedFailed);
                for (int i = 0; i < n; i++)
                {
                    batchedRuns.Add(buffer[i]);
                    left -= buffer[i].Count;
                }
            }
            List<PfnRun> singleRuns = HostFixture.AllocateSingly(single, want, out bool singleFailed);
            Assert.Equal(singleRuns, batchedRuns);
            Assert.Equal(singleFailed, batchedFailed);
            Assert.Equal(single.FreeFrameCount, batched.FreeFrameCount);
            Assert.Equal(singleFaults.Fired, batchedFaults.Fired);
            batched.AssertFrameMapsValidForTests();
            single.AssertFrameMapsValidForTests();
            if (batchedFaults.Fired)
            {
                batchedFaults.Arm(0);
                singleFaults.Arm(0);
            }
        }
        Assert.Equal(0UL, batched.FreeFrameCount);
        if (runPages == 1)
        {
            // The first request took ~6000 frames of 2 windows: both went dense at their first take.
            (int free, int refs, _, _) = batched.DenseWindowsForTests();
            Assert.True(free + refs > 0, "a large populate on 1-page runs leaves dense windows");
        }
    }

    [Fact]
    public void AllocateRuns_ContiguousLayout_TakesTheLowestFreeFramesAsOneRun()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(3, out _));
        var buffer = new PfnRun[8];
        Assert.Equal(1, mem.AllocateRuns(100, buffer, out bool failed));
        Assert.False(failed);
        Assert.Equal(new PfnRun(new Pfn(3), 100), buffer[0]);
        // 153 frames left: one run, then the next allocation fails.
        Assert.Equal(1, mem.AllocateRuns(1000, buffer, out failed));
        Assert.True(failed);
        Assert.Equal(new PfnRun(new Pfn(103), 153), buffer[0]);
        Assert.Equal(0UL, mem.FreeFrameCount);
    }
}
