using System.Text;
using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// <see cref="PhysicalMemory.UnpinRun"/> (one run, the 4 KiB unmap's lane) against <see cref="PhysicalMemory.UnpinRuns"/>
/// of the same one run on a twin memory: the same pins, pin counters, dirty bits, reference counts, freed frames and
/// stored contents after every call, on contiguous memory (the pin map in runs) and on memory shattered into 1-page runs
/// (windows that go dense), dirtying or not, for frames pinned once or twice, still mapped or not (the one-frame lane,
/// <see cref="FrameCountMap.TryDropOnlyCount"/>, and the general one); and a run that is not wholly pinned (a caller
/// bug) throws from both, with the same message, and leaves both alike.
/// </summary>
public sealed class PhysicalMemoryUnpinRunTests
{
    private const ulong Frames = 8192;

    [Theory]
    [InlineData(false, 1, 0x5eed_a001UL)]
    [InlineData(false, 32, 0x5eed_a003UL)]
    [InlineData(true, 1, 0x5eed_a002UL)]
    public void UnpinRun_RandomRuns_EndsAsUnpinRunsOfTheOneRun(bool shattered, int stretch, ulong seed)
    {
        var rng = new SplitMix64(seed);
        PhysicalMemory lane = Build(shattered, seed);
        PhysicalMemory reference = Build(shattered, seed);
        Prepare(lane, new SplitMix64(seed), (ulong)stretch);
        Prepare(reference, new SplitMix64(seed), (ulong)stretch);
        Assert.Equal(Digest(reference), Digest(lane));
        if (stretch > 1)
        {
            // Pins in stretches leave the pin map in runs: the one-frame lane (FrameCountMap.TryDropOnlyCount) is taken.
            Assert.Equal(0, lane.DenseWindowsForTests().Pins);
        }
        int unpinned = 0;
        int freedSeen = 0;
        for (int step = 0; step < 3000; step++)
        {
            ulong first = rng.Next() % Frames;
            ulong count = 1 + (rng.Next() % 4 == 0 ? rng.Next() % 3 : 0);
            if (first + count > Frames || reference.MinPinCount(new Pfn(first), count) == 0)
            {
                // Pin it first (not every frame is pinned), as GUP would, in both.
                if (first + count <= Frames && reference.RefCount(new Pfn(first)) != 0 && AllAllocated(reference, first, count))
                {
                    reference.Pin(new Pfn(first), count);
                    lane.Pin(new Pfn(first), count);
                }
                continue;
            }
            bool dirty = rng.Next() % 3 != 0;
            ulong freeBefore = reference.FreeFrameCount;
            var run = new PfnRun(new Pfn(first), count);
            reference.UnpinRuns([run], dirty);
            lane.UnpinRun(run, dirty);
            unpinned++;
            freedSeen += reference.FreeFrameCount > freeBefore ? 1 : 0;
            if (step % 8 == 0)
            {
                Assert.True(Digest(reference) == Digest(lane), $"seed 0x{seed:x} step {step}: unpin {run} dirty {dirty} differs");
            }
        }
        Assert.Equal(Digest(reference), Digest(lane));
        Assert.True(unpinned > 1000 && freedSeen > 50, $"unpinned {unpinned}, freed {freedSeen}: both the kept and the freed case must run");
        if (shattered)
        {
            Assert.True(lane.DenseWindowsForTests().Pins > 0 || reference.DenseWindowsForTests().Pins > 0, "no dense pin window: the dense form was not exercised");
        }
    }

    [Fact]
    public void UnpinRun_RunNotWhollyPinned_ThrowsAsUnpinRunsAndLeavesTheSameState()
    {
        PhysicalMemory lane = Build(false, 1);
        PhysicalMemory reference = Build(false, 1);
        foreach (PhysicalMemory m in new[] { lane, reference })
        {
            Assert.True(m.TryAllocateRun(16, out PfnRun r));
            m.Pin(r.First, 2);
        }
        var run = new PfnRun(new Pfn(0), 3);
        Assert.Throws<InvalidOperationException>(() => reference.UnpinRuns([run], true));
        Assert.Throws<InvalidOperationException>(() => lane.UnpinRun(run, true));
        Assert.Equal(Digest(reference), Digest(lane));
        Assert.Equal(0UL, lane.PinCount(new Pfn(0)));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(2UL)]
    public void UnpinRun_OneFrameNotHoldingExactlyOnePin_EndsAsUnpinRuns(ulong pins)
    {
        PhysicalMemory lane = Build(false, 1);
        PhysicalMemory reference = Build(false, 1);
        foreach (PhysicalMemory m in new[] { lane, reference })
        {
            Assert.True(m.TryAllocateRun(16, out PfnRun r));
            m.Pin(r.First, 4);
            for (ulong k = 0; k < pins; k++)
            {
                m.Pin(new Pfn(7), 1);
            }
            m.DropRefs(new PfnRun(new Pfn(7), 1));
        }
        var run = new PfnRun(new Pfn(7), 1);
        if (pins == 0)
        {
            // A caller bug: both throw with the batch's message, the frame dirtied and nothing else changed.
            var expected = Assert.Throws<InvalidOperationException>(() => reference.UnpinRuns([run], true));
            var got = Assert.Throws<InvalidOperationException>(() => lane.UnpinRun(run, true));
            Assert.Equal(expected.Message, got.Message);
        }
        else
        {
            reference.UnpinRuns([run], true);
            lane.UnpinRun(run, true);
            Assert.Equal(pins - 1, lane.PinCount(new Pfn(7)));
        }
        Assert.Equal(Digest(reference), Digest(lane));
    }

    [Fact]
    public void UnpinRun_ZeroFrameOrEmptyRun_ChangesNothing()
    {
        PhysicalMemory m = Build(false, 1);
        Assert.True(m.TryGetZeroFrame(out Pfn zero));
        string before = Digest(m);
        m.UnpinRun(new PfnRun(zero, 1), true);
        m.UnpinRun(new PfnRun(new Pfn(5), 0), true);
        Assert.Equal(before, Digest(m));
    }

    private static PhysicalMemory Build(bool shattered, ulong seed) =>
        new(12, Frames * 4096, shattered ? FrameLayout.ScatteredRuns(1, seed % 1000) : FrameLayout.Contiguous);

    // Every frame allocated (one reference each), three in four pinned once and some of those twice, a third of the
    // pinned ones no longer referenced (an unpin frees them), some with contents (freeing clears them); decided per
    // stretch of frames in allocation order (a stretch of 1: the pin map shatters into dense windows).
    private static void Prepare(PhysicalMemory m, SplitMix64 rng, ulong stretch)
    {
        ulong left = Frames;
        var runs = new List<PfnRun>();
        while (left > 0 && m.TryAllocateRun(left, out PfnRun r))
        {
            runs.Add(r);
            left -= r.Count;
        }
        byte[] data = [1, 2, 3, 4];
        ulong roll = 0;
        foreach (PfnRun r in runs)
        {
            for (ulong k = 0; k < r.Count; k++)
            {
                Pfn f = r.First.Plus(k);
                if (f.Value % stretch == 0)
                {
                    roll = rng.Next() % 12;
                }
                if (roll < 9)
                {
                    m.Pin(f, 1);
                    if (roll < 2)
                    {
                        m.Pin(f, 1);
                    }
                    if (roll % 3 == 0)
                    {
                        m.Write(f.ToPhys(12), data);
                        m.DropRefs(new PfnRun(f, 1));
                    }
                }
            }
        }
    }

    private static bool AllAllocated(PhysicalMemory m, ulong first, ulong count)
    {
        for (ulong f = first; f < first + count; f++)
        {
            if (m.RefCount(new Pfn(f)) == 0)
            {
                return false;
            }
        }
        return true;
    }

    private static string Digest(PhysicalMemory m)
    {
        var sb = new StringBuilder();
        m.VisitPinRuns((a, b, c) => sb.Append($"p{a}-{b}:{c};"));
        sb.Append($"pinned {m.PinnedFrameCount} total {m.TotalPins} free {m.FreeFrameCount} bytes {m.StoredContentBytes}\n");
        for (ulong f = 0; f < Frames; f++)
        {
            sb.Append(m.IsDirty(new Pfn(f)) ? 'd' : '.').Append(m.RefCount(new Pfn(f))).Append(' ');
        }
        return sb.ToString();
    }
}
