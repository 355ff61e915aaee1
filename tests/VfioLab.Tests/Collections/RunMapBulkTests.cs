using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;

namespace VfioLab.Tests.Collections;

/// <summary>
/// <see cref="RunMap{T}.UpdateSorted"/> (a sorted batch of +1 or -1 count updates applied leaf by leaf) against a
/// per-key dictionary, mixed with ordinary Set and Remove, at node sizes that make every split, merge and cross-leaf
/// join happen: after each batch the runs, the count and the tree's invariants must be what the oracle says.
/// </summary>
public class RunMapBulkTests
{
    // +1 to every key of the ranges (absent keys get 1), or -1 (a key at 1 is removed; an absent key stays absent
    // and is counted, as an unpin of a frame with no pin is).
    private struct CountBatch(List<(ulong Start, ulong Last)> ranges, bool drop) : IRunBatch<FrameCount>
    {
        public ulong Absent;
        public ulong Applied;

        public readonly int Count => ranges.Count;

        public readonly ulong StartOf(int i) => ranges[i].Start;

        public readonly ulong LastOf(int i) => ranges[i].Last;

        public bool Apply(ulong start, ulong last, bool mapped, FrameCount value, out FrameCount result)
        {
            Applied += last - start + 1;
            if (!mapped && drop)
            {
                Absent += last - start + 1;
                result = default;
                return false;
            }
            ulong c = !mapped ? 1 : drop ? value.Count - 1 : value.Count + 1;
            result = new FrameCount(c);
            return c != 0;
        }
    }

    [Theory]
    [InlineData(4, 0xb01c_0001UL, 300UL)]
    [InlineData(5, 0xb01c_0002UL, 1_000UL)]
    [InlineData(8, 0xb01c_0003UL, 5_000UL)]
    [InlineData(16, 0xb01c_0004UL, 20_000UL)]
    [InlineData(64, 0xb01c_0005UL, 100_000UL)]
    public void SortedBatches_MixedWithSetAndRemove_MatchPerKeyDictionary(int capacity, ulong seed, ulong keySpace)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<FrameCount>(capacity);
        var naive = new Dictionary<ulong, ulong>();
        bool sawPacked = false;
        for (int step = 0; step < 400; step++)
        {
            string where = $"capacity {capacity} seed 0x{seed:x} step {step}";
            ulong kind = rng.Next() % 8;
            if (kind == 0)
            {
                ulong start = rng.Next() % keySpace;
                ulong last = Math.Min(keySpace - 1, start + (rng.Next() % 20));
                ulong c = 1 + (rng.Next() % 3);
                map.Set(start, last, new FrameCount(c));
                for (ulong k = start; k <= last; k++)
                {
                    naive[k] = c;
                }
            }
            else if (kind == 1)
            {
                ulong start = rng.Next() % keySpace;
                ulong last = Math.Min(keySpace - 1, start + (rng.Next() % 40));
                map.Remove(start, last);
                for (ulong k = start; k <= last; k++)
                {
                    naive.Remove(k);
                }
            }
            else if (kind == 2)
            {
                // A back-to-back fill of one-key runs of distinct counts, which packs leaves, for the batches to open.
                ulong start = rng.Next() % keySpace;
                ulong last = Math.Min(keySpace - 1, start + (ulong)(capacity * 3));
                for (ulong k = start; k <= last; k++)
                {
                    ulong c = 1 + (k % 2);
                    map.Set(k, k, new FrameCount(c));
                    naive[k] = c;
                }
                sawPacked |= map.PackedLeafCount() > 0;
            }
            else
            {
                bool drop = kind >= 6;
                List<(ulong, ulong)> ranges = RandomRanges(ref rng, keySpace, drop ? naive : null);
                var batch = new CountBatch(ranges, drop);
                ulong expectAbsent = 0;
                ulong expectApplied = 0;
                foreach ((ulong s, ulong l) in ranges)
                {
                    for (ulong k = s; k <= l; k++)
                    {
                        expectApplied++;
                        naive.TryGetValue(k, out ulong c);
                        if (drop && c == 0)
                        {
                            expectAbsent++;
                        }
                        else if (drop && c == 1)
                        {
                            naive.Remove(k);
                        }
                        else
                        {
                            naive[k] = drop ? c - 1 : c + 1;
                        }
                    }
                }
                map.UpdateSorted(ref batch);
                Assert.True(expectApplied == batch.Applied, $"{where}: {batch.Applied} keys applied, expected {expectApplied}");
                Assert.True(expectAbsent == batch.Absent, $"{where}: {batch.Absent} absent keys, expected {expectAbsent}");
            }
            map.AssertValid();
            AssertSameRuns(naive, map, where);
        }
        Assert.True(sawPacked, "no leaf was ever packed: the batches never met the packed form");
    }

    [Fact]
    public void SortedBatch_IntoEmptyMap_ThenOut_LeavesItEmpty()
    {
        var map = new RunMap<FrameCount>(4);
        var ranges = new List<(ulong, ulong)>();
        for (ulong k = 0; k < 5000; k += 2)
        {
            ranges.Add((k, k));
        }
        var up = new CountBatch(ranges, drop: false);
        map.UpdateSorted(ref up);
        map.AssertValid();
        Assert.Equal(2500, map.Count);
        // Filling the holes merges everything into one run of 1.
        var holes = new List<(ulong, ulong)>();
        for (ulong k = 1; k < 4999; k += 2)
        {
            holes.Add((k, k));
        }
        var fill = new CountBatch(holes, drop: false);
        map.UpdateSorted(ref fill);
        map.AssertValid();
        Assert.Equal(1, map.Count);
        Assert.True(map.TryGet(0, out Run<FrameCount> all) && all.Last == 4998 && all.Value.Count == 1);
        var down = new CountBatch([(0UL, 4998UL)], drop: true);
        map.UpdateSorted(ref down);
        map.AssertValid();
        Assert.True(map.IsEmpty);
        Assert.Equal(0UL, down.Absent);
    }

    [Fact]
    public void SortedBatch_ReachingTheLastKey_DoesNotOverflow()
    {
        var map = new RunMap<FrameCount>(4);
        map.Set(ulong.MaxValue - 10, ulong.MaxValue, new FrameCount(1));
        var up = new CountBatch([(ulong.MaxValue - 20, ulong.MaxValue - 15), (ulong.MaxValue - 3, ulong.MaxValue)], drop: false);
        map.UpdateSorted(ref up);
        map.AssertValid();
        (ulong, ulong, ulong)[] expected =
        [
            (ulong.MaxValue - 20, ulong.MaxValue - 15, 1UL),
            (ulong.MaxValue - 10, ulong.MaxValue - 4, 1UL),
            (ulong.MaxValue - 3, ulong.MaxValue, 2UL),
        ];
        Assert.Equal(expected, Runs(map).ToArray());
    }

    [Theory]
    [InlineData(0xb01c_1001UL, 1UL)]
    [InlineData(0xb01c_1002UL, 4UL)]
    public void PinRunsAndUnpinRuns_EndAsOneRunAtATime(ulong seed, ulong runPages)
    {
        // Two hosts, the same frames: one pins and unpins through the batched calls, the other one run at a time.
        var batched = new PhysicalMemory(12, 8UL << 20, FrameLayout.ScatteredRuns(runPages, seed));
        var single = new PhysicalMemory(12, 8UL << 20, FrameLayout.ScatteredRuns(runPages, seed));
        var rng = new SplitMix64(seed);
        var owned = new List<PfnRun>();
        ulong ask = 1 + (rng.Next() % 3);
        while (owned.Count < 600 && batched.TryAllocateRun(ask, out PfnRun run))
        {
            Assert.True(single.TryAllocateRun(ask, out PfnRun same) && same == run);
            ask = 1 + (rng.Next() % 3);
            owned.Add(run);
        }
        for (int round = 0; round < 30; round++)
        {
            // A random subset, some runs twice (a frame pinned through two addresses takes the one-at-a-time path).
            var pick = owned.Where(_ => rng.Next() % 3 == 0).ToList();
            if (round % 5 == 4 && pick.Count > 0)
            {
                pick.Add(pick[0]);
            }
            batched.PinRuns(pick.ToArray());
            foreach (PfnRun r in pick)
            {
                single.Pin(r.First, r.Count);
            }
            AssertSameHost(batched, single, $"seed 0x{seed:x} round {round} pin");
            if (round % 2 == 1)
            {
                bool dirty = round % 4 == 1;
                var reversed = Enumerable.Reverse(pick).ToArray();
                batched.UnpinRuns(reversed, dirty);
                foreach (PfnRun r in reversed)
                {
                    single.Unpin(r.First, r.Count, dirty);
                }
                AssertSameHost(batched, single, $"seed 0x{seed:x} round {round} unpin");
            }
        }
        // Dropping the owners' references frees the frames whose pins are gone, and only those.
        foreach (PfnRun r in owned.Take(300))
        {
            batched.DropRefs(r);
            single.DropRefs(r);
        }
        AssertSameHost(batched, single, $"seed 0x{seed:x} after drops");
        // Unpin what is left, one layer of pins per batch (each frame once per batch: the batched path).
        while (batched.TotalPins > 0)
        {
            PfnRun[] layer = PinRuns(batched).Select(r => new PfnRun(new Pfn(r.Item1), r.Item2 - r.Item1 + 1)).ToArray();
            batched.UnpinRuns(layer, markDirty: true);
            foreach (PfnRun r in layer)
            {
                single.Unpin(r.First, r.Count, markDirty: true);
            }
            AssertSameHost(batched, single, $"seed 0x{seed:x} unpinning the rest");
        }
        AssertSameHost(batched, single, $"seed 0x{seed:x} all unpinned");
        Assert.Equal(0UL, batched.TotalPins);
    }

    [Fact]
    public void UnpinRuns_OfAFrameWithNoPin_Throws_AndLeavesCountersMatchingThePins()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(8, out PfnRun run));
        mem.PinRuns([new PfnRun(run.First, 2), new PfnRun(run.First.Plus(4), 2)]);
        var ex = Assert.Throws<InvalidOperationException>(() =>
            mem.UnpinRuns([new PfnRun(run.First, 2), new PfnRun(run.First.Plus(3), 3)], markDirty: false));
        Assert.Contains("frame not pinned", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"0x{run.First.Value + 3:x}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0UL, mem.PinCount(run.First));
        Assert.Equal(0UL, mem.PinCount(run.First.Plus(4)));
        Assert.Equal(0UL, mem.PinnedFrameCount);
        Assert.Equal(0UL, mem.TotalPins);
    }

    private static void AssertSameHost(PhysicalMemory a, PhysicalMemory b, string where)
    {
        Assert.True(a.PinnedFrameCount == b.PinnedFrameCount, $"{where}: pinned frames {a.PinnedFrameCount} vs {b.PinnedFrameCount}");
        Assert.True(a.TotalPins == b.TotalPins, $"{where}: total pins {a.TotalPins} vs {b.TotalPins}");
        Assert.True(a.FreeFrameCount == b.FreeFrameCount, $"{where}: free frames {a.FreeFrameCount} vs {b.FreeFrameCount}");
        Assert.Equal(PinRuns(b), PinRuns(a));
        for (ulong f = 0; f < a.FrameCount; f++)
        {
            if (a.IsDirty(new Pfn(f)) != b.IsDirty(new Pfn(f)))
            {
                Assert.Fail($"{where}: frame 0x{f:x} dirty {a.IsDirty(new Pfn(f))} vs {b.IsDirty(new Pfn(f))}");
            }
        }
        // The counters follow the map: frames with a pin, and pins summed.
        List<(ulong First, ulong Last, ulong Count)> runs = PinRuns(a);
        Assert.True(a.PinnedFrameCount == (ulong)runs.Sum(r => (decimal)(r.Last - r.First + 1)), $"{where}: pinned frames off the map");
        Assert.True(a.TotalPins == (ulong)runs.Sum(r => (decimal)((r.Last - r.First + 1) * r.Count)), $"{where}: total pins off the map");
    }

    private static List<(ulong, ulong, ulong)> PinRuns(PhysicalMemory mem)
    {
        var runs = new List<(ulong, ulong, ulong)>();
        mem.VisitPinRuns((first, last, count) => runs.Add((first, last, count)));
        return runs;
    }

    // Sorted disjoint ranges, short and long, dense and sparse; over keys with a count when `present` is given
    // (mostly: a few absent keys too).
    private static List<(ulong, ulong)> RandomRanges(ref SplitMix64 rng, ulong keySpace, Dictionary<ulong, ulong>? present)
    {
        var ranges = new List<(ulong, ulong)>();
        ulong stride = 1 + (rng.Next() % 12);
        ulong k = rng.Next() % Math.Max(1, keySpace / 2);
        ulong end = Math.Min(keySpace, k + (rng.Next() % keySpace));
        while (k < end)
        {
            ulong len = rng.Next() % 10 == 0 ? 1 + (rng.Next() % 50) : 1 + (rng.Next() % 3);
            ulong last = Math.Min(end - 1, k + len - 1);
            if (present is null)
            {
                ranges.Add((k, last));
            }
            else
            {
                // Cut the range to keys that hold a count, except now and then.
                ulong s = k;
                while (s <= last)
                {
                    bool absentOk = rng.Next() % 50 == 0;
                    if (!present.ContainsKey(s) && !absentOk)
                    {
                        s++;
                        continue;
                    }
                    ulong e = s;
                    while (e + 1 <= last && present.ContainsKey(e + 1))
                    {
                        e++;
                    }
                    ranges.Add((s, e));
                    s = e + 2;
                }
            }
            k = last + 1 + (rng.Next() % (stride + 1));
        }
        return ranges;
    }

    private static List<(ulong, ulong, ulong)> Runs(RunMap<FrameCount> map)
    {
        var runs = new List<(ulong, ulong, ulong)>();
        foreach (Run<FrameCount> r in map.All())
        {
            runs.Add((r.Start, r.Last, r.Value.Count));
        }
        return runs;
    }

    private static void AssertSameRuns(Dictionary<ulong, ulong> naive, RunMap<FrameCount> map, string where)
    {
        var expected = new List<(ulong, ulong, ulong)>();
        foreach (ulong k in naive.Keys.Order())
        {
            ulong c = naive[k];
            if (expected.Count > 0 && expected[^1].Item2 + 1 == k && expected[^1].Item3 == c)
            {
                expected[^1] = (expected[^1].Item1, k, c);
            }
            else
            {
                expected.Add((k, k, c));
            }
        }
        List<(ulong, ulong, ulong)> actual = Runs(map);
        if (!expected.SequenceEqual(actual))
        {
            int i = 0;
            while (i < expected.Count && i < actual.Count && expected[i] == actual[i])
            {
                i++;
            }
            Assert.Fail($"{where}: run {i} is {(i < actual.Count ? actual[i].ToString() : "missing")}, expected {(i < expected.Count ? expected[i].ToString() : "none")}");
        }
        Assert.True(expected.Count == map.Count, $"{where}: Count {map.Count}, expected {expected.Count}");
    }
}
