using VfioLab.Collections;
using VfioLab.Host;

namespace VfioLab.Tests.Collections;

public class RunMapTests
{
    private readonly record struct Linear(ulong V) : IRunValue<Linear>
    {
        public Linear Advance(ulong offset) => new(V + offset);
    }

    [Fact]
    public void Set_AdjacentContinuingValues_MergeIntoOneRun()
    {
        var map = new RunMap<Linear>();
        map.Set(0, 9, new Linear(100));
        map.Set(10, 19, new Linear(110));
        Assert.Equal(1, map.Count);
        Assert.True(map.TryGetValue(15, out Linear v));
        Assert.Equal(115UL, v.V);
    }

    [Fact]
    public void Set_AdjacentDiscontinuousValues_StaySeparate()
    {
        var map = new RunMap<Linear>();
        map.Set(0, 9, new Linear(100));
        map.Set(10, 19, new Linear(500));
        Assert.Equal(2, map.Count);
    }

    [Fact]
    public void Remove_Middle_SplitsRunAndKeepsValues()
    {
        var map = new RunMap<Linear>();
        map.Set(0, 99, new Linear(1000));
        map.Remove(40, 59);
        Assert.Equal(2, map.Count);
        Assert.False(map.TryGetValue(50, out _));
        Assert.True(map.TryGetValue(60, out Linear v));
        Assert.Equal(1060UL, v.V);
        Assert.True(map.Covers(0, 39));
        Assert.False(map.Covers(0, 40));
    }

    [Fact]
    public void Set_FullKeySpace_CoversEverythingAndRemovesFromTop()
    {
        var map = new RunMap<FrameCount>();
        map.Set(0, ulong.MaxValue, new FrameCount(1));
        Assert.True(map.Covers(0, ulong.MaxValue));
        Assert.True(map.TryGet(ulong.MaxValue, out Run<FrameCount> r));
        Assert.Equal(0UL, r.Start);
        map.Remove(ulong.MaxValue - 1, ulong.MaxValue);
        Assert.False(map.TryGetValue(ulong.MaxValue, out _));
        Assert.True(map.TryGetValue(ulong.MaxValue - 2, out _));
        map.Remove(0, ulong.MaxValue);
        Assert.True(map.IsEmpty);
    }

    [Fact]
    public void Overlapping_ClipsRunsToRange()
    {
        var map = new RunMap<Linear>();
        map.Set(0, 9, new Linear(0));
        map.Set(20, 29, new Linear(0));
        var runs = new List<Run<Linear>>();
        foreach (Run<Linear> r in map.Overlapping(5, 24))
        {
            runs.Add(r);
        }
        Assert.Equal([new Run<Linear>(5, 9, new Linear(5)), new Run<Linear>(20, 24, new Linear(0))], runs);
    }

    [Fact]
    public void RandomOperations_MatchNaiveDictionary()
    {
        const ulong seed = 0x5eed_0001;
        var rng = new SplitMix64(seed);
        var map = new RunMap<Linear>();
        var naive = new Dictionary<ulong, ulong>();
        for (int step = 0; step < 3000; step++)
        {
            ulong start = rng.Next() % 200;
            ulong len = 1 + rng.Next() % 20;
            ulong last = start + len - 1;
            if (rng.Next() % 3 == 0)
            {
                map.Remove(start, last);
                for (ulong k = start; k <= last; k++)
                {
                    naive.Remove(k);
                }
            }
            else
            {
                ulong v = rng.Next() % 4 == 0 ? start + 1000 : rng.Next() % 100_000;
                if (!map.Overlaps(start, last) && rng.Next() % 2 == 0)
                {
                    map.Insert(start, last, new Linear(v));
                }
                else
                {
                    map.Set(start, last, new Linear(v));
                }
                for (ulong k = start; k <= last; k++)
                {
                    naive[k] = v + (k - start);
                }
            }
            for (ulong k = 0; k < 230; k++)
            {
                bool has = map.TryGetValue(k, out Linear got);
                bool expected = naive.TryGetValue(k, out ulong want);
                Assert.True(has == expected && (!has || got.V == want),
                    $"seed 0x{seed:x} step {step} key {k}: map {(has ? got.V.ToString() : "-")} naive {(expected ? want.ToString() : "-")}");
            }
            ulong prevLast = 0;
            ulong prevEndValue = 0;
            bool first = true;
            int count = 0;
            foreach (Run<Linear> r in map.All())
            {
                Assert.True(first || r.Start > prevLast, $"seed 0x{seed:x} step {step}: runs overlap or unordered");
                Assert.False(!first && r.Start == prevLast + 1 && r.Value.V == prevEndValue,
                    $"seed 0x{seed:x} step {step}: neighbours at 0x{r.Start:x} agree but were not merged");
                first = false;
                prevLast = r.Last;
                prevEndValue = r.Value.V + (r.Last - r.Start + 1);
                count++;
            }
            Assert.Equal(count, map.Count);
        }
    }

    [Theory]
    [InlineData(4, 0x5eed_0002UL, 400UL)]
    [InlineData(5, 0x5eed_0003UL, 2000UL)]
    [InlineData(8, 0x5eed_0004UL, 20_000UL)]
    [InlineData(64, 0x5eed_0005UL, 50_000UL)]
    public void RandomOperations_SmallNodes_KeepTreeValidAndMatchNaiveModel(int capacity, ulong seed, ulong keySpace)
    {
        // Small nodes make every split, merge, root collapse and cross-leaf join happen within a few
        // hundred operations; the naive model is a sorted array of (start, last, value) runs.
        var rng = new SplitMix64(seed);
        var map = new RunMap<Linear>(capacity);
        var naive = new SortedDictionary<ulong, ulong>();
        for (int step = 0; step < 6000; step++)
        {
            ulong op = rng.Next() % 10;
            ulong start = rng.Next() % keySpace;
            ulong len = 1 + (rng.Next() % 8 == 0 ? rng.Next() % (keySpace / 4) : rng.Next() % 6);
            ulong last = Math.Min(start + len - 1, keySpace + 10);
            if (op < 3)
            {
                map.Remove(start, last);
                NaiveRemove(naive, start, last);
            }
            else if (op < 5)
            {
                ulong v = rng.Next() % 3 == 0 ? start + 1000 : rng.Next() % 1_000_000;
                bool free = !NaiveOverlaps(naive, start, last);
                Assert.Equal(free, map.TryInsert(start, last, new Linear(v)));
                if (free)
                {
                    NaiveSet(naive, start, last, v);
                }
            }
            else
            {
                // Values continuing a neighbour's (start + 1000) make merges common.
                ulong v = rng.Next() % 2 == 0 ? start + 1000 : rng.Next() % 1_000_000;
                map.Set(start, last, new Linear(v));
                NaiveSet(naive, start, last, v);
            }
            map.AssertValid();
            if (step % 25 == 0 || keySpace <= 2000)
            {
                AssertSameRuns(naive, map, $"capacity {capacity} seed 0x{seed:x} step {step}");
                ulong probe = rng.Next() % (keySpace + 20);
                AssertNeighbourQueries(naive, map, probe, $"capacity {capacity} seed 0x{seed:x} step {step} key {probe}");
            }
        }
    }

    [Fact]
    public void Overlapping_MapChangedDuringWalk_ResumesAtTheNextKey()
    {
        var map = new RunMap<Linear>(4);
        for (ulong i = 0; i < 40; i++)
        {
            map.Set(i * 10, (i * 10) + 4, new Linear(i));
        }
        var seen = new List<ulong>();
        foreach (Run<Linear> r in map.Overlapping(0, 400))
        {
            seen.Add(r.Start);
            // Removing what the walk has passed and what lies ahead both reshape the leaves.
            map.Remove(r.Start, r.Last);
            map.Remove(r.Start + 10, r.Last + 10);
        }
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (ulong)i * 20), seen);
        Assert.True(map.IsEmpty);
        map.AssertValid();
    }

    [Fact]
    public void Remove_MillionAppendedRuns_InOneCall_EmptiesTheMap()
    {
        var map = new RunMap<Linear>();
        for (ulong i = 0; i < 1_000_000; i++)
        {
            map.Insert(i * 32, (i * 32) + 15, new Linear(i));
        }
        map.AssertValid();
        Assert.Equal(1_000_000, map.Count);
        map.Remove(8, (999_999 * 32) + 7);
        map.AssertValid();
        Assert.Equal([new Run<Linear>(0, 7, new Linear(0)), new Run<Linear>(999_999 * 32 + 8, (999_999 * 32) + 15, new Linear(999_999 + 8))],
            AllRuns(map));
    }

    private static void NaiveRemove(SortedDictionary<ulong, ulong> naive, ulong start, ulong last)
    {
        foreach (ulong k in naive.Keys.Where(k => k >= start && k <= last).ToList())
        {
            naive.Remove(k);
        }
    }

    private static void NaiveSet(SortedDictionary<ulong, ulong> naive, ulong start, ulong last, ulong v)
    {
        for (ulong k = start; k <= last; k++)
        {
            naive[k] = v + (k - start);
        }
    }

    private static bool NaiveOverlaps(SortedDictionary<ulong, ulong> naive, ulong start, ulong last) =>
        naive.Keys.Any(k => k >= start && k <= last);

    // The naive keys grouped into maximal runs of consecutive keys with continuing values.
    private static List<Run<Linear>> NaiveRuns(SortedDictionary<ulong, ulong> naive)
    {
        var runs = new List<Run<Linear>>();
        foreach ((ulong k, ulong v) in naive)
        {
            if (runs.Count > 0 && runs[^1].Last + 1 == k && runs[^1].Value.V + (k - runs[^1].Start) == v)
            {
                runs[^1] = runs[^1] with { Last = k };
            }
            else
            {
                runs.Add(new Run<Linear>(k, k, new Linear(v)));
            }
        }
        return runs;
    }

    private static void AssertSameRuns(SortedDictionary<ulong, ulong> naive, RunMap<Linear> map, string where)
    {
        List<Run<Linear>> expected = NaiveRuns(naive);
        List<Run<Linear>> actual = AllRuns(map);
        Assert.True(expected.SequenceEqual(actual), $"{where}: runs differ ({expected.Count} expected, {actual.Count} in the map)");
        Assert.Equal(expected.Count, map.Count);
    }

    private static void AssertNeighbourQueries(SortedDictionary<ulong, ulong> naive, RunMap<Linear> map, ulong key, string where)
    {
        List<Run<Linear>> runs = NaiveRuns(naive);
        Run<Linear>? before = runs.LastOrDefault(r => r.Start <= key) is { } b && runs.Any(r => r.Start <= key) ? b : null;
        Run<Linear>? after = runs.FirstOrDefault(r => r.Last >= key) is { } a && runs.Any(r => r.Last >= key) ? a : null;
        Assert.True(map.TryGetAtOrBefore(key, out Run<Linear> gotBefore) == before.HasValue && (!before.HasValue || gotBefore == before.Value), $"{where}: at-or-before");
        Assert.True(map.TryGetAtOrAfter(key, out Run<Linear> gotAfter) == after.HasValue && (!after.HasValue || gotAfter == after.Value), $"{where}: at-or-after");
        bool contains = before.HasValue && before.Value.Last >= key;
        Assert.Equal(contains, map.TryGet(key, out _));
        ulong hi = key + 5;
        Assert.Equal(runs.Any(r => r.Start <= hi && r.Last >= key), map.Overlaps(key, hi));
        Assert.Equal(Enumerable.Range(0, 6).All(i => naive.ContainsKey(key + (ulong)i)), map.Covers(key, hi));
    }

    private static List<Run<Linear>> AllRuns(RunMap<Linear> map)
    {
        var runs = new List<Run<Linear>>();
        foreach (Run<Linear> r in map.All())
        {
            runs.Add(r);
        }
        return runs;
    }
}
