using VfioLab.Collections;
using VfioLab.Host;
using Word = VfioLab.Tests.Collections.RunMapDenseTests.Word;

namespace VfioLab.Tests.Collections;

/// <summary>
/// <see cref="RunMap{T}.InsertSorted"/> (ascending runs into free keys, appended a leaf at a time) against a per-granule
/// dictionary and against a twin map given one <see cref="RunMap{T}.Insert"/> per run, mixed with Set and Remove, at node
/// sizes that make every split, lend, merge and cross-leaf join happen: batches at the end of the map (the IOMMU table of
/// a MAP), in gaps before existing runs, touching the next run, continuing the run before them, and reaching the last key.
/// </summary>
public class RunMapAppendTests
{
    [Theory]
    [InlineData(4, 1UL, 0xa99e_0001UL, 400UL)]
    [InlineData(5, 1UL, 0xa99e_0002UL, 2_000UL)]
    [InlineData(8, 4096UL, 0xa99e_0003UL, 3_000UL)]
    [InlineData(32, 4096UL, 0xa99e_0004UL, 20_000UL)]
    [InlineData(64, 1UL, 0xa99e_0005UL, 50_000UL)]
    [InlineData(6, 3UL, 0xa99e_0006UL, 1_500UL)]
    public void SortedInserts_MixedWithSetAndRemove_MatchPerGranuleDictionaryAndOneInsertPerRun(int capacity, ulong unit, ulong seed, ulong granules)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        var twin = new RunMap<Word>(capacity);
        var naive = new SortedDictionary<ulong, ulong>();
        int packedSeen = 0;
        int joinsSeen = 0;
        for (int step = 0; step < 300; step++)
        {
            string where = $"capacity {capacity} unit {unit} seed 0x{seed:x} step {step}";
            ulong kind = rng.Next() % 10;
            if (kind == 0)
            {
                ulong g = rng.Next() % granules;
                ulong n = 1 + (rng.Next() % 8);
                ulong last = Math.Min(granules - 1, g + n - 1);
                ulong v = RandomValue(ref rng);
                map.Set(g * unit, ((last + 1) * unit) - 1, new Word(v));
                twin.Set(g * unit, ((last + 1) * unit) - 1, new Word(v));
                for (ulong k = g; k <= last; k++)
                {
                    naive[k] = v + ((k - g) * unit);
                }
            }
            else if (kind <= 2)
            {
                ulong g = rng.Next() % granules;
                ulong last = Math.Min(granules - 1, g + (rng.Next() % (ulong)(capacity * 4)));
                map.Remove(g * unit, ((last + 1) * unit) - 1);
                twin.Remove(g * unit, ((last + 1) * unit) - 1);
                for (ulong k = g; k <= last; k++)
                {
                    naive.Remove(k);
                }
            }
            else
            {
                // A batch into free granules from a random start (kind 3-5) or from the end of the map (6-9, the usual MAP).
                ulong from = kind >= 6 && naive.Count > 0 ? naive.Keys.Max() + 1 + (rng.Next() % 2) : rng.Next() % granules;
                // Kind 9: one-granule runs back to back, none continuing another (a MAP over memory shattered into pages).
                List<Run<Word>> runs = FreeRuns(ref rng, naive, from, granules, unit, capacity, clean: kind == 9, ref joinsSeen);
                map.InsertSorted(runs.ToArray());
                foreach (Run<Word> r in runs)
                {
                    twin.Insert(r.Start, r.Last, r.Value);
                    for (ulong k = r.Start / unit; k <= r.Last / unit; k++)
                    {
                        naive[k] = r.Value.V + ((k * unit) - r.Start);
                    }
                }
            }
            map.AssertValid();
            AssertSame(naive, unit, map, where);
            Assert.True(RunsOf(twin).SequenceEqual(RunsOf(map)), $"{where}: the map differs from one Insert per run");
            Assert.True(twin.PackedLeafCount() == map.PackedLeafCount(), $"{where}: {map.PackedLeafCount()} packed leaves, one Insert per run packs {twin.PackedLeafCount()}");
            Assert.True(twin.ApproximateBytes() == map.ApproximateBytes(), $"{where}: {map.ApproximateBytes()} bytes, one Insert per run {twin.ApproximateBytes()}");
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
        }
        Assert.True(unit == 3 || packedSeen > 0, "no leaf was ever packed: the appends never met the packed form");
        Assert.True(joinsSeen > 0, "no run ever continued the one before it");
    }

    [Fact]
    public void SortedInsert_ReachingTheLastKey_DoesNotOverflow()
    {
        var map = new RunMap<Word>(4);
        map.Insert(0, 9, new Word(100));
        Run<Word>[] runs =
        [
            new(ulong.MaxValue - 30, ulong.MaxValue - 21, new Word(1_000)),
            new(ulong.MaxValue - 20, ulong.MaxValue - 11, new Word(2_000)),
            new(ulong.MaxValue - 10, ulong.MaxValue - 1, new Word(3_000)),
            new(ulong.MaxValue, ulong.MaxValue, new Word(3_010)),
        ];

        map.InsertSorted(runs);

        map.AssertValid();
        Assert.Equal(
            [(0UL, 9UL, 100UL), (ulong.MaxValue - 30, ulong.MaxValue - 21, 1_000UL), (ulong.MaxValue - 20, ulong.MaxValue - 11, 2_000UL),
                (ulong.MaxValue - 10, ulong.MaxValue, 3_000UL)],
            RunsOf(map));
    }

    [Fact]
    public void SortedInsert_OfOnePageRunsInKeyOrder_PacksEveryFullLeaf()
    {
        // The IOMMU table of a MAP over memory shattered into pages: 4 KiB runs at consecutive IOVAs, none continuing
        // the one before.
        var map = new RunMap<Word>(32);
        var runs = new Run<Word>[32 * 40];
        for (int i = 0; i < runs.Length; i++)
        {
            ulong iova = (ulong)i << 12;
            runs[i] = new Run<Word>(iova, iova + 0xFFF, new Word((ulong)(((i * 7919) % 100_000) + 1) << 20));
        }

        map.InsertSorted(runs);

        map.AssertValid();
        Assert.Equal(runs.Length, map.Count);
        Assert.Equal(40, map.PackedLeafCount());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(15)]
    public void SortedInsert_WholeLeavesAfterAFullLastLeaf_EndAsOneInsertPerRun(int continuesAt)
    {
        // The map's last leaf is full and the batch brings whole leaves of 1-page runs: they go in as packed leaves
        // written directly, unless a run continues the one before it (at index continuesAt of the batch; 0: the first
        // run continues the map's last run), which must merge as one Insert per run would.
        const int Capacity = 8;
        var map = new RunMap<Word>(Capacity);
        var twin = new RunMap<Word>(Capacity);
        for (int i = 0; i < Capacity; i++)
        {
            ulong iova = (ulong)i << 12;
            map.Insert(iova, iova + 0xFFF, new Word((ulong)(i + 1) << 24));
            twin.Insert(iova, iova + 0xFFF, new Word((ulong)(i + 1) << 24));
        }
        var runs = new Run<Word>[(Capacity * 3) + 3];
        for (int i = 0; i < runs.Length; i++)
        {
            ulong iova = (ulong)(Capacity + i) << 12;
            ulong phys = i == continuesAt ? (i == 0 ? ((ulong)Capacity << 24) + 0x1000 : runs[i - 1].Value.V + 0x1000) : (ulong)(100 + i) << 24;
            runs[i] = new Run<Word>(iova, iova + 0xFFF, new Word(phys));
        }

        map.InsertSorted(runs);
        foreach (Run<Word> r in runs)
        {
            twin.Insert(r.Start, r.Last, r.Value);
        }

        map.AssertValid();
        Assert.Equal(RunsOf(twin), RunsOf(map));
        Assert.Equal(twin.PackedLeafCount(), map.PackedLeafCount());
        Assert.Equal(twin.ApproximateBytes(), map.ApproximateBytes());
        Assert.Equal(continuesAt < 0 ? 4 : 3, map.PackedLeafCount());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(1000)]
    public void MapAndUnmapRounds_WithKeptLeaves_EndAsAMapThatKeepsNone(int limit)
    {
        // An IOMMU table's MAP and UNMAP of memory shattered into pages, repeated at moving offsets and lengths: the map
        // that keeps emptied packed leaves (FreeLeafLimit) and takes them for its next appends must hold exactly what a
        // map that keeps none holds, runs, packed leaves and bytes, after every step, and never keep more than its bound.
        const int Capacity = 8;
        var map = new RunMap<Word>(Capacity) { FreeLeafLimit = limit };
        var twin = new RunMap<Word>(Capacity);
        var rng = new SplitMix64(0x0e10_0001UL);
        int keptMost = 0;
        for (int round = 0; round < 40; round++)
        {
            ulong first = rng.Next() % 5;
            var runs = new Run<Word>[(Capacity * (1 + (int)(rng.Next() % 6))) + (int)(rng.Next() % Capacity)];
            for (int i = 0; i < runs.Length; i++)
            {
                ulong iova = (first + (ulong)i) << 12;
                runs[i] = new Run<Word>(iova, iova + 0xFFF, new Word((ulong)((((round * 131) + (i * 7919)) % 100_000) + 1) << 20));
            }
            map.InsertSorted(runs);
            twin.InsertSorted(runs);
            map.AssertValid();
            Assert.Equal(RunsOf(twin), RunsOf(map));
            Assert.Equal(twin.PackedLeafCount(), map.PackedLeafCount());
            Assert.Equal(twin.ApproximateBytes(), map.ApproximateBytes());
            // UNMAP in pieces (a batch at a time), sometimes leaving a tail mapped for the next round to meet.
            ulong end = runs[^1].Last;
            ulong cut = first << 12;
            while (cut < end)
            {
                ulong last = Math.Min(end, cut + (((rng.Next() % (3 * Capacity)) + 1) << 12) - 1);
                map.Remove(cut, last);
                twin.Remove(cut, last);
                cut = last + 1;
            }
            map.AssertValid();
            Assert.Equal(RunsOf(twin), RunsOf(map));
            Assert.InRange(map.FreeLeafCount, 0, limit);
            keptMost = Math.Max(keptMost, map.FreeLeafCount);
        }
        // Kept at all when allowed (else no append above took a kept leaf), and the small bound reached.
        Assert.Equal(limit != 0, keptMost != 0);
        Assert.True(limit != 3 || keptMost == 3);
    }

    [Fact]
    public void SortedInsert_FromASource_EndsAsFromASpan()
    {
        // The runs computed by a source as they are read (an IOMMU table's runs straight from a batch's chunks) against
        // the same runs from an array, onto a map whose last leaf is part full, then full: whole leaves and the tails.
        const int Capacity = 8;
        var map = new RunMap<Word>(Capacity);
        var twin = new RunMap<Word>(Capacity);
        ulong next = 0;
        foreach (int length in new[] { 3, 5, Capacity * 3, 1, (Capacity * 2) + 5, Capacity })
        {
            var source = new EveryPage(next, length);
            var runs = new Run<Word>[length];
            for (int i = 0; i < length; i++)
            {
                runs[i] = source[i];
            }
            map.InsertSorted(ref source);
            twin.InsertSorted(runs);
            map.AssertValid();
            Assert.Equal(RunsOf(twin), RunsOf(map));
            Assert.Equal(twin.PackedLeafCount(), map.PackedLeafCount());
            Assert.Equal(twin.ApproximateBytes(), map.ApproximateBytes());
            next += (ulong)length;
        }
        Assert.True(map.PackedLeafCount() >= 4);
    }

    // Page i of `first` on, each its own 4 KiB run at a scattered value.
    private readonly struct EveryPage(ulong first, int length) : IRunSource<Word>
    {
        public int Length => length;

        public Run<Word> this[int i]
        {
            get
            {
                ulong iova = (first + (ulong)i) << 12;
                return new Run<Word>(iova, iova + 0xFFF, new Word((((first + (ulong)i) * 7919 % 100_000) + 1) << 20));
            }
        }

        public bool TryPackUnits(int i, ulong start, ulong unit, Span<ulong> words) => false;
    }

    private static ulong RandomValue(ref SplitMix64 rng) =>
        rng.Next() % 16 == 0 ? (1UL << 63) | (rng.Next() % 1000) : (rng.Next() % 1_000_000) << 20;

    // Ascending runs over free granules from `from`, each 1-3 granules long (mostly 1), some back to back with the one
    // before and continuing its value (they must merge), some touching mapped granules on either side.
    private static List<Run<Word>> FreeRuns(ref SplitMix64 rng, SortedDictionary<ulong, ulong> naive, ulong from, ulong granules, ulong unit, int capacity,
        bool clean, ref int joins)
    {
        var runs = new List<Run<Word>>();
        int want = clean ? capacity * 3 : 1 + (int)(rng.Next() % (ulong)(capacity * 5));
        ulong g = from;
        while (runs.Count < want && g < granules)
        {
            if (naive.ContainsKey(g))
            {
                g++;
                continue;
            }
            ulong len = !clean && rng.Next() % 8 == 0 ? 2 + (rng.Next() % 2) : 1;
            ulong last = g;
            while (last + 1 < g + len && last + 1 < granules && !naive.ContainsKey(last + 1))
            {
                last++;
            }
            ulong v = clean ? (2 + (rng.Next() % 1_000_000)) << 20 : RandomValue(ref rng);
            if (clean)
            {
                runs.Add(new Run<Word>(g * unit, ((last + 1) * unit) - 1, new Word(v)));
                g = last + 1;
                continue;
            }
            if (runs.Count > 0 && runs[^1].Last + 1 == g * unit && rng.Next() % 5 == 0)
            {
                // Continues the run before it.
                v = runs[^1].Value.V + (runs[^1].Last - runs[^1].Start + 1);
                joins++;
            }
            else if (runs.Count == 0 && g > 0 && naive.TryGetValue(g - 1, out ulong before) && rng.Next() % 3 == 0)
            {
                // Continues the mapped run before the batch.
                v = before + unit;
                joins++;
            }
            runs.Add(new Run<Word>(g * unit, ((last + 1) * unit) - 1, new Word(v)));
            g = last + 1 + (rng.Next() % 4 == 0 ? 1 + (rng.Next() % 3) : 0);
        }
        if (!clean && runs.Count > 0 && naive.TryGetValue((runs[^1].Last / unit) + 1, out ulong after) && rng.Next() % 3 == 0)
        {
            // The last run ends where a mapped run begins and continues into it.
            Run<Word> r = runs[^1];
            runs[^1] = r with { Value = new Word(after - (r.Last - r.Start + 1)) };
            joins++;
        }
        return runs;
    }

    private static List<(ulong, ulong, ulong)> RunsOf(RunMap<Word> map)
    {
        var runs = new List<(ulong, ulong, ulong)>();
        foreach (Run<Word> r in map.All())
        {
            runs.Add((r.Start, r.Last, r.Value.V));
        }
        return runs;
    }

    private static void AssertSame(SortedDictionary<ulong, ulong> naive, ulong unit, RunMap<Word> map, string where)
    {
        var expected = new List<(ulong, ulong, ulong)>();
        foreach ((ulong g, ulong v) in naive)
        {
            if (expected.Count > 0 && expected[^1].Item2 + 1 == g * unit && expected[^1].Item3 + (expected[^1].Item2 + 1 - expected[^1].Item1) == v)
            {
                expected[^1] = (expected[^1].Item1, ((g + 1) * unit) - 1, expected[^1].Item3);
            }
            else
            {
                expected.Add((g * unit, ((g + 1) * unit) - 1, v));
            }
        }
        List<(ulong, ulong, ulong)> actual = RunsOf(map);
        Assert.True(expected.SequenceEqual(actual), $"{where}: expected {expected.Count} runs, got {actual.Count}; first difference at " +
            $"{expected.Zip(actual).TakeWhile(p => p.First == p.Second).Count()}");
    }
}
