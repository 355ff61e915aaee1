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
            // Back-to-back one-unit runs that continue nothing (packed leaves), then scattered runs of several units.
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
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
            Run<Word>[] before = [.. map.All()];
            for (int step = 0; step < 200; step++)
            {
                ulong start = rng.Next() % 3 == 0 && before.Length > 0 ? before[rng.Next() % (ulong)before.Length].Start + (rng.Next() % 3) : rng.Next() % (31_000 * unit);
                ulong last = rng.Next() % 8 == 0 ? ulong.MaxValue : start + (rng.Next() % (600 * unit));
                int max = rng.Next() % 3 == 0 ? 1 + (int)(rng.Next() % 10) : int.MaxValue;
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

    private struct Recorder(int max) : IRunVisitor<Word>
    {
        public List<Run<Word>> Seen = [];

        public readonly bool Visit(ulong start, ulong last, Word value)
        {
            Seen.Add(new Run<Word>(start, last, value));
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
