using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// <see cref="PhysicalMemory.UnpinFrameBits"/> (a large UNMAP's pieces gathered as bits in a <see cref="FrameBitSet"/>
/// and unpinned window by window in frame order) against the one-run <see cref="PhysicalMemory.Unpin"/> on a twin host
/// built alike: pieces of 1 to 64 frames inside one 64-frame word in shuffled order, a frame pinned twice (the set refuses
/// it a second time; the refused piece goes through <see cref="PhysicalMemory.UnpinRuns"/>), frames unmapped while pinned
/// (freed by their last unpin), dirtying and clean unpins, on shattered layouts whose pin windows go dense and on
/// contiguous memory whose windows stay runs. Pins, references, dirty bits, free frames and counters must end the same
/// frame by frame; a frame with no pin throws after the rest is applied and ends as <see cref="PhysicalMemory.UnpinRuns"/> leaves it.
/// </summary>
public class FrameBitSetUnpinTests
{
    [Theory]
    [InlineData(1UL, 0x0b17_0001UL)]
    [InlineData(2UL, 0x0b17_0002UL)]
    [InlineData(4UL, 0x0b17_0003UL)]
    [InlineData(16UL, 0x0b17_0004UL)]
    [InlineData(0UL, 0x0b17_0005UL)]
    public void UnpinFrameBits_EndsAsUnpinningOneRunAtATime(ulong runPages, ulong seed)
    {
        FrameLayout layout = runPages == 0 ? FrameLayout.Contiguous : FrameLayout.ScatteredRuns(runPages, seed);
        var bitsHost = new PhysicalMemory(12, 64UL << 20, layout);
        var single = new PhysicalMemory(12, 64UL << 20, layout);
        var frames = new List<ulong>();
        while (frames.Count < 12_000 && bitsHost.TryAllocateRun(1, out PfnRun run))
        {
            Assert.True(single.TryAllocateRun(1, out PfnRun twin) && twin == run, "the twins allocate alike");
            frames.Add(run.First.Value);
        }
        frames.Sort();
        var rng = new SplitMix64(seed);
        var set = new FrameBitSet();
        int refusedSeen = 0;
        for (int round = 0; round < 6; round++)
        {
            string where = $"run {runPages} round {round}";
            // Pieces: stretches of frames adjacent in the sorted list, cut to stay inside one 64-frame word (what the
            // set takes), each pinned once, a few pinned twice.
            var pieces = new List<PfnRun>();
            for (int i = 0; i < frames.Count;)
            {
                int len = 1 + (int)(rng.Next() % (round % 3 == 0 ? 1UL : 40UL));
                int n = 1;
                while (n < len && i + n < frames.Count && frames[i + n] == frames[i] + (ulong)n && ((frames[i] + (ulong)n) & 63) != 0)
                {
                    n++;
                }
                if (rng.Next() % 4 != 0)
                {
                    pieces.Add(new PfnRun(new Pfn(frames[i]), (ulong)n));
                    if (rng.Next() % 50 == 0)
                    {
                        pieces.Add(new PfnRun(new Pfn(frames[i]), (ulong)n));
                    }
                }
                i += n;
            }
            Shuffle(pieces, ref rng);
            bitsHost.PinRuns([.. pieces]);
            single.PinRuns([.. pieces]);
            if (round % 2 == 1)
            {
                foreach (PfnRun r in pieces.Where(_ => rng.Next() % 5 == 0).Distinct().ToList())
                {
                    bitsHost.DropRefs(r);
                    single.DropRefs(r);
                    for (ulong f = r.First.Value; f <= r.Last.Value; f++)
                    {
                        frames.Remove(f);
                    }
                }
            }
            bool dirty = round != 2;
            var refused = new List<PfnRun>();
            foreach (PfnRun r in pieces)
            {
                if (!set.TryAdd(r.First.Value, r.Count))
                {
                    refused.Add(r);
                }
            }
            refusedSeen += refused.Count;
            bitsHost.UnpinFrameBits(set, dirty);
            Assert.True(set.IsEmpty, $"{where}: the set is emptied");
            bitsHost.UnpinRuns([.. refused], dirty);
            foreach (PfnRun r in pieces)
            {
                single.Unpin(r.First, r.Count, dirty);
            }
            AssertTwins(bitsHost, single, where);
        }
        Assert.True(refusedSeen > 0, "some frame was named twice");
    }

    [Fact]
    public void UnpinFrameBits_OfAFrameWithNoPin_AppliesTheRestThenThrows()
    {
        var bitsHost = new PhysicalMemory(12, 64UL << 20, FrameLayout.ScatteredRuns(1, 7));
        var single = new PhysicalMemory(12, 64UL << 20, FrameLayout.ScatteredRuns(1, 7));
        var pins = new List<PfnRun>();
        while (pins.Count < 3000 && bitsHost.TryAllocateRun(1, out PfnRun run))
        {
            Assert.True(single.TryAllocateRun(1, out _));
            pins.Add(run);
        }
        bitsHost.PinRuns([.. pins]);
        single.PinRuns([.. pins]);
        var set = new FrameBitSet();
        foreach (PfnRun r in pins)
        {
            Assert.True(set.TryAdd(r.First.Value, 1));
        }
        PfnRun stray = pins[1500];
        bitsHost.Unpin(stray.First, 1);
        single.Unpin(stray.First, 1);
        Assert.Throws<InvalidOperationException>(() => bitsHost.UnpinFrameBits(set, markDirty: true));
        Assert.True(set.IsEmpty);
        Assert.Throws<InvalidOperationException>(() => single.UnpinRuns([.. pins], markDirty: true));
        AssertTwins(bitsHost, single, "after the throw");
    }

    [Fact]
    public void TryAdd_RefusesPiecesOutsideOneWordAndFramesHeld()
    {
        var set = new FrameBitSet();
        Assert.True(set.TryAdd(0x1000 + 60, 4));
        Assert.False(set.TryAdd(0x1000 + 62, 1));
        Assert.False(set.TryAdd(0x1000 + 61, 4));
        Assert.True(set.TryAdd(0x1000 + 64, 64));
        Assert.False(set.TryAdd(0x1000 + 63, 2));
        Assert.False(set.TryAdd(5, 0));
        var drained = new List<PfnRun>();
        set.DrainTo(drained);
        Assert.True(set.IsEmpty);
        Assert.Equal([new PfnRun(new Pfn(0x1000 + 60), 4), new PfnRun(new Pfn(0x1000 + 64), 64)], drained);
        Assert.True(set.TryAdd(0x1000 + 62, 1), "a drained set holds nothing");
    }

    private static void AssertTwins(PhysicalMemory a, PhysicalMemory b, string where)
    {
        for (ulong f = 0; f < a.FrameCount; f++)
        {
            var pfn = new Pfn(f);
            if (a.PinCount(pfn) != b.PinCount(pfn) || a.RefCount(pfn) != b.RefCount(pfn) || a.IsDirty(pfn) != b.IsDirty(pfn))
            {
                Assert.Fail($"{where}: frame 0x{f:x} pins {a.PinCount(pfn)}/{b.PinCount(pfn)} refs " +
                    $"{a.RefCount(pfn)}/{b.RefCount(pfn)} dirty {a.IsDirty(pfn)}/{b.IsDirty(pfn)}");
            }
        }
        Assert.True(a.FreeFrameCount == b.FreeFrameCount, $"{where}: free {a.FreeFrameCount}/{b.FreeFrameCount}");
        Assert.True(a.PinnedFrameCount == b.PinnedFrameCount, $"{where}: pinned {a.PinnedFrameCount}/{b.PinnedFrameCount}");
        Assert.True(a.TotalPins == b.TotalPins, $"{where}: pins {a.TotalPins}/{b.TotalPins}");
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
