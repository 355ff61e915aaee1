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
}
