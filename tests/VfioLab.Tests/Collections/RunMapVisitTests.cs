using VfioLab.Collections;
using VfioLab.Host;
using static VfioLab.Tests.Collections.RunMapDenseTests;

namespace VfioLab.Tests.Collections;

/// <summary>
/// <see cref="RunMap{T}.Visit"/> (the runs of a range read straight from the leaves: an IOMMU table's streamed unmap)
/// against <see cref="RunMap{T}.Overlapping"/>: over maps with packed and sparse leaves, of 4- to 64-entry nodes and runs
/// of one and several units, ranges that start and end inside runs, in holes and past the map's ends, and visitors that
/// stop after a few runs, it sees exactly the runs the enumeration yields (clipped values included), in order, and
/// changes nothing.
/// </summary>
public sealed class RunMapVisitTests
{
    [Theory]
    [InlineData(4, 1UL, 0x5eed_f001UL)]
    [InlineData(8, 4096UL, 0x5eed_f002UL)]
    [InlineData(64, 4096UL, 0x5eed_f003UL)]
    [InlineData(5, 3UL, 0x5eed_f004UL)]
    public void Visit_RandomRanges_SeesWhatOverlappingEnumerates(int capacity, ulong unit, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        int packedSeen = 0;
        int stopped = 0;
        for (int round = 0; round < 6; round++)
        {
            AddRound(map, ref rng, capacity, unit);
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
            Run<Word>[] before = [.. map.All()];
            for (int step = 0; step < 200; step++)
            {
                (ulong start, ulong last, int max) = DrawRange(ref rng, before, unit);
                var visitor = new Recorder(max);
                map.Visit(start, last, ref visitor);
                List<Run<Word>> want = [.. map.Overlapping(start, last)];
                want = [.. want.Take(max)];
                stopped += visitor.Seen.Count == max ? 1 : 0;
                Assert.True(want.SequenceEqual(visitor.Seen), $"seed 0x{seed:x} round {round} step {step} [{start}, {last}] max {max}: saw {visitor.Seen.Count} runs, expected {want.Count}");
            }
            Run<Word>[] after = [.. map.All()];
            Assert.True(before.SequenceEqual(after), "Visit changed the map");
            map.AssertValid();
        }
        Assert.True(packedSeen > 0, "no leaf was ever packed: the test did not exercise the packed form");
        Assert.True(stopped > 50, $"the visitor stopped the walk {stopped} times: the early stop was not exercised");
    }

    // VisitPacked (a packed leaf's whole runs handed over at once: the invariant checker's read of an IOMMU table after a
    // MAP of shattered memory) sees the runs Overlapping enumerates, in order, the batches expanded; a visitor that stops
    // after a batch has seen a prefix of them at least as long as it asked for.
    [Theory]
    [InlineData(4, 1UL, 0x5eed_f101UL)]
    [InlineData(8, 4096UL, 0x5eed_f102UL)]
    [InlineData(32, 4096UL, 0x5eed_f103UL)]
    [InlineData(5, 3UL, 0x5eed_f104UL)]
    public void VisitPacked_RandomRanges_SeesWhatOverlappingEnumerates(int capacity, ulong unit, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        int batches = 0;
        int cut = 0;
        int stopped = 0;
        for (int round = 0; round < 6; round++)
        {
            AddRound(map, ref rng, capacity, unit);
            Run<Word>[] before = [.. map.All()];
            for (int step = 0; step < 200; step++)
            {
                (ulong start, ulong last, int max) = DrawRange(ref rng, before, unit);
                var visitor = new PackedRecorder(max);
                map.VisitPacked(start, last, ref visitor);
                List<Run<Word>> want = [.. map.Overlapping(start, last)];
                batches += visitor.Batches;
                cut += visitor.Single;
                string where = $"seed 0x{seed:x} round {round} step {step} [{start}, {last}] max {max}";
                if (max == int.MaxValue || want.Count <= max)
                {
                    Assert.True(want.SequenceEqual(visitor.Seen), $"{where}: saw {visitor.Seen.Count} runs, expected {want.Count}");
                }
                else
                {
                    stopped++;
                    Assert.True(visitor.Seen.Count >= max, $"{where}: stopped after {visitor.Seen.Count} runs");
                    Assert.True(want.Take(visitor.Seen.Count).SequenceEqual(visitor.Seen), $"{where}: not a prefix of what Overlapping yields");
                }
            }
            Assert.True(before.SequenceEqual([.. map.All()]), "VisitPacked changed the map");
        }
        Assert.True(batches > 100, $"only {batches} packed batches: the packed form was not exercised");
        Assert.True(cut > 100, $"only {cut} single runs: cut runs and sparse leaves were not exercised");
        Assert.True(stopped > 20, $"the visitor stopped the walk {stopped} times: the early stop was not exercised");
    }

    // A packed leaf whose runs end at 2^64-1, visited to the top: the count of runs that start in the range must not
    // overflow (every run is seen once, the last one ending at 2^64-1).
    [Fact]
    public void VisitPacked_RunsEndingAtTheTopOfTheKeySpace_SeesEachOnce()
    {
        var map = new RunMap<Word>(8);
        const ulong Unit = 4096;
        ulong first = ulong.MaxValue - (40 * Unit) + 1;
        for (ulong k = 0; k < 40; k++)
        {
            map.Set(first + (k * Unit), first + (k * Unit) + Unit - 1, new Word((k * 7) << 20));
        }
        Assert.True(map.PackedLeafCount() > 0, "no leaf packed");
        foreach (ulong start in (ulong[])[0, first, first + 5, ulong.MaxValue - Unit + 1, ulong.MaxValue])
        {
            var visitor = new PackedRecorder(int.MaxValue);
            map.VisitPacked(start, ulong.MaxValue, ref visitor);
            Assert.Equal([.. map.Overlapping(start, ulong.MaxValue)], visitor.Seen);
            Assert.Equal(ulong.MaxValue, visitor.Seen[^1].Last);
        }
    }

    [Fact]
    public void Visit_EmptyMapOrEmptyRange_SeesNothing()
    {
        var map = new RunMap<FrameCount>();
        var visitor = new CountRecorder();
        map.Visit(0, ulong.MaxValue, ref visitor);
        map.Set(0, ulong.MaxValue, new FrameCount(2));
        map.Visit(5, 4, ref visitor);
        Assert.Equal(0, visitor.Runs);
        map.Visit(7, ulong.MaxValue, ref visitor);
        Assert.Equal(1, visitor.Runs);
        Assert.Equal((7UL, ulong.MaxValue), (visitor.Start, visitor.Last));
    }

    // One round of a test map: back-to-back one-unit runs that continue nothing (packed leaves), then scattered runs of
    // several units.
    private static void AddRound(RunMap<Word> map, ref SplitMix64 rng, int capacity, ulong unit)
    {
        ulong from = (rng.Next() % 20_000) * unit;
        for (ulong k = 0; k < (ulong)(capacity * 8); k++)
        {
            map.Set(from + (k * unit), from + (k * unit) + unit - 1, new Word((rng.Next() % 1_000_000) << 20));
        }
        for (int i = 0; i < 100; i++)
        {
            ulong start = (rng.Next() % 30_000) * unit;
            map.Set(start, start + ((1 + (rng.Next() % 4)) * unit) - 1, new Word((rng.Next() % 1_000_000) << 20));
        }
    }

    // A range to visit (starting at or just inside a run a third of the time, reaching the top of the key space an
    // eighth of it) and how many runs the visitor takes before it stops (a few, a third of the time).
    private static (ulong Start, ulong Last, int Max) DrawRange(ref SplitMix64 rng, Run<Word>[] runs, ulong unit)
    {
        ulong start = rng.Next() % 3 == 0 && runs.Length > 0 ? runs[rng.Next() % (ulong)runs.Length].Start + (rng.Next() % 3) : rng.Next() % (31_000 * unit);
        ulong last = rng.Next() % 8 == 0 ? ulong.MaxValue : start + (rng.Next() % (600 * unit));
        int max = rng.Next() % 3 == 0 ? 1 + (int)(rng.Next() % 10) : int.MaxValue;
        return (start, last, max);
    }

    private struct Recorder(int max) : IRunVisitor<Word>
    {
        public List<Run<Word>> Seen = [];

        public readonly bool Visit(ulong start, ulong last, Word value)
        {
            Seen.Add(new Run<Word>(start, last, value));
            return Seen.Count < max;
        }
    }

    private struct PackedRecorder(int max) : IPackedRunVisitor<Word>
    {
        public List<Run<Word>> Seen = [];
        public int Batches;
        public int Single;

        public bool Visit(ulong start, ulong last, Word value)
        {
            Single++;
            Seen.Add(new Run<Word>(start, last, value));
            return Seen.Count < max;
        }

        public bool VisitPacked(ulong start, ulong unit, ReadOnlySpan<ulong> packed)
        {
            Assert.False(packed.IsEmpty, "an empty batch");
            Batches++;
            for (int k = 0; k < packed.Length; k++)
            {
                ulong s = start + ((ulong)k * unit);
                Seen.Add(new Run<Word>(s, s + unit - 1, Word.Unpack(packed[k])));
            }
            return Seen.Count < max;
        }
    }

    private struct CountRecorder : IRunVisitor<FrameCount>
    {
        public int Runs;
        public ulong Start;
        public ulong Last;

        public bool Visit(ulong start, ulong last, FrameCount value)
        {
            Runs++;
            (Start, Last) = (start, last);
            return true;
        }
    }
}
