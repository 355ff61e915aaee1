using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// <see cref="PhysicalMemory.UnpinRuns"/>'s batch lanes against the one-run <see cref="PhysicalMemory.Unpin"/> on a twin
/// host built alike: frames pinned while their process still maps them (no reference is read, none freed), frames
/// unmapped while pinned (freed by their last unpin), such a frame mapped again before its unpin (it stays), and the
/// same frames pinned again once none is left unmapped. Pins, references, dirty bits, free frames and counters must end
/// the same frame by frame, on memory shattered enough for the frame maps to go dense and on contiguous memory.
/// </summary>
public class BatchUnpinTwinTests
{
    [Theory]
    [InlineData(1UL, 0xb47c_0001UL)]
    [InlineData(2UL, 0xb47c_0002UL)]
    [InlineData(16UL, 0xb47c_0003UL)]
    [InlineData(0UL, 0xb47c_0004UL)]
    public void UnpinRuns_OfMappedAndUnmappedFrames_EndsAsUnpinningOneRunAtATime(ulong runPages, ulong seed)
    {
        FrameLayout layout = runPages == 0 ? FrameLayout.Contiguous : FrameLayout.ScatteredRuns(runPages, seed);
        var batched = new PhysicalMemory(12, 64UL << 20, layout);
        var single = new PhysicalMemory(12, 64UL << 20, layout);
        var frames = new List<ulong>();
        while (frames.Count < 12_000 && batched.TryAllocateRun(1, out PfnRun run))
        {
            Assert.True(single.TryAllocateRun(1, out PfnRun twin) && twin == run, "the twins allocate alike");
            frames.Add(run.First.Value);
        }
        var rng = new SplitMix64(seed);
        for (int round = 0; round < 4; round++)
        {
            string where = $"run {runPages} round {round}";
            List<PfnRun> pin = frames.Where(_ => rng.Next() % 3 != 0).Select(f => new PfnRun(new Pfn(f), 1)).ToList();
            Shuffle(pin, ref rng);
            batched.PinRuns([.. pin]);
            single.PinRuns([.. pin]);
            if (round % 2 == 1)
            {
                // Some pinned frames lose their process's mapping (they stay for their pin), and a few of those are
                // mapped again before the unpin: they must stay allocated after it.
                foreach (PfnRun r in pin.Where(_ => rng.Next() % 5 == 0).ToList())
                {
                    batched.DropRefs(r);
                    single.DropRefs(r);
                    if (rng.Next() % 4 == 0)
                    {
                        batched.AddRefs(r);
                        single.AddRefs(r);
                    }
                    else
                    {
                        frames.Remove(r.First.Value);
                    }
                }
            }
            bool dirty = round != 2;
            batched.UnpinRuns([.. pin], dirty);
            foreach (PfnRun r in pin)
            {
                single.Unpin(r.First, r.Count, dirty);
            }
            AssertTwins(batched, single, where);
        }
        foreach (ulong f in frames)
        {
            batched.DropRefs(new PfnRun(new Pfn(f), 1));
            single.DropRefs(new PfnRun(new Pfn(f), 1));
        }
        Assert.Equal(batched.FrameCount, batched.FreeFrameCount);
        AssertTwins(batched, single, "all dropped");
    }

    private static void AssertTwins(PhysicalMemory batched, PhysicalMemory single, string where)
    {
        for (ulong f = 0; f < batched.FrameCount; f++)
        {
            var pfn = new Pfn(f);
            if (batched.PinCount(pfn) != single.PinCount(pfn) || batched.RefCount(pfn) != single.RefCount(pfn) ||
                batched.IsDirty(pfn) != single.IsDirty(pfn))
            {
                Assert.Fail($"{where}: frame 0x{f:x} pins {batched.PinCount(pfn)}/{single.PinCount(pfn)} refs " +
                    $"{batched.RefCount(pfn)}/{single.RefCount(pfn)} dirty {batched.IsDirty(pfn)}/{single.IsDirty(pfn)}");
            }
        }
        Assert.True(batched.FreeFrameCount == single.FreeFrameCount, $"{where}: free {batched.FreeFrameCount}/{single.FreeFrameCount}");
        Assert.True(batched.PinnedFrameCount == single.PinnedFrameCount, $"{where}: pinned {batched.PinnedFrameCount}/{single.PinnedFrameCount}");
        Assert.True(batched.TotalPins == single.TotalPins, $"{where}: pins {batched.TotalPins}/{single.TotalPins}");
    }

    private static void Shuffle(List<PfnRun> list, ref SplitMix64 rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = (int)(rng.Next() % (ulong)(i + 1));
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
