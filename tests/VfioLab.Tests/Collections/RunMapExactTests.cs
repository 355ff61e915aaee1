using VfioLab.Collections;
using VfioLab.Host;
using static VfioLab.Tests.Collections.RunMapDenseTests;

namespace VfioLab.Tests.Collections;

/// <summary>
/// <see cref="RunMap{T}.TryRemoveExact"/> (one descent for a run known by its exact bounds: an IOMMU table's 4 KiB
/// unmap) against <see cref="RunMap{T}.Remove"/> on a twin map: it removes exactly when some run has those bounds, then
/// ends as the twin does (runs, packed leaves, the tree's invariants), and changes nothing otherwise: bounds that start
/// or end inside a run, cover two runs, or fall in a hole.
/// </summary>
public sealed class RunMapExactTests
{
    [Theory]
    [InlineData(4, 0x5eed_e001UL)]
    [InlineData(8, 0x5eed_e002UL)]
    [InlineData(64, 0x5eed_e003UL)]
    public void TryRemoveExact_RandomBounds_RemovesOnlyAnExactRunAndEndsAsRemove(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        var twin = new RunMap<Word>(capacity);
        int removed = 0;
        int refused = 0;
        int packedSeen = 0;
        for (int round = 0; round < 8; round++)
        {
            // One-unit runs in key order that continue nothing (packed leaves), then scattered runs of several lengths.
            ulong from = rng.Next() % 20_000;
            for (ulong k = from; k < from + (ulong)(capacity * 6); k++)
            {
                Word v = new((rng.Next() % 1_000_000) << 16);
                map.Set(k, k, v);
                twin.Set(k, k, v);
            }
            for (int i = 0; i < 200; i++)
            {
                ulong start = rng.Next() % 30_000;
                ulong last = start + (rng.Next() % 5);
                Word v = new((rng.Next() % 1_000_000) << 16);
                map.Set(start, last, v);
                twin.Set(start, last, v);
            }
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
            for (int step = 0; step < 300; step++)
            {
                Run<Word>[] runs = [.. twin.All()];
                ulong start;
                ulong last;
                int pick = (int)(rng.Next() % 4);
                if (pick < 2 && runs.Length > 0)
                {
                    // An exact run (half the time), or one of its ends moved by one (in a run or a hole).
                    Run<Word> r = runs[rng.Next() % (ulong)runs.Length];
                    (start, last) = pick == 0 ? (r.Start, r.Last) : (rng.Next() % 2 == 0 ? (r.Start, r.Last + 1) : (r.Start + 1, Math.Max(r.Start + 1, r.Last)));
                }
                else if (pick == 2 && runs.Length > 1)
                {
                    // Two neighbouring runs' whole span.
                    int i = (int)(rng.Next() % (ulong)(runs.Length - 1));
                    (start, last) = (runs[i].Start, runs[i + 1].Last);
                }
                else
                {
                    start = rng.Next() % 30_000;
                    last = start + (rng.Next() % 3);
                }
                bool exact = runs.Any(r => r.Start == start && r.Last == last);
                string where = $"seed 0x{seed:x} round {round} step {step} [{start}, {last}]";

                bool took = map.TryRemoveExact(start, last, out Word value);

                Assert.True(exact == took, $"{where}: exact {exact}, removed {took}");
                if (took)
                {
                    Assert.Equal(runs.Single(r => r.Start == start).Value, value);
                    twin.Remove(start, last);
                    removed++;
                }
                else
                {
                    refused++;
                }
                map.AssertValid();
                Assert.Equal([.. twin.All()], [.. map.All()]);
                Assert.Equal(twin.Count, map.Count);
                Assert.Equal(twin.PackedLeafCount(), map.PackedLeafCount());
            }
        }
        Assert.True(removed > 100 && refused > 100, $"removed {removed}, refused {refused}: both paths must be exercised");
        Assert.True(packedSeen > 0, "no leaf was ever packed: the test did not exercise the packed form");
    }

    [Fact]
    public void TryRemoveExact_EmptyMap_RefusesAndStaysEmpty()
    {
        var map = new RunMap<FrameCount>();
        Assert.False(map.TryRemoveExact(0, ulong.MaxValue, out _));
        Assert.True(map.IsEmpty);
        map.Set(0, ulong.MaxValue, new FrameCount(3));
        Assert.True(map.TryRemoveExact(0, ulong.MaxValue, out FrameCount v));
        Assert.Equal(new FrameCount(3), v);
        Assert.True(map.IsEmpty);
        map.AssertValid();
    }
}
