using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Tests.Collections;

/// <summary>
/// The packed leaf form of <see cref="RunMap{T}"/> (equal-length back-to-back runs stored as one word each)
/// against a naive per-granule dictionary: after every operation the runs, the count, the tree's invariants
/// and lookups must be exactly what the sparse form gives, at unit 1 (pages) and unit 4096 (IOVA bytes).
/// </summary>
public class RunMapDenseTests
{
    // A linear value that packs unless its top bit is set, so leaves both pack and refuse to.
    internal readonly record struct Word(ulong V) : IRunValue<Word>
    {
        public static bool Packs => true;

        public Word Advance(ulong offset) => new(V + offset);

        public static bool TryPack(Word value, out ulong packed)
        {
            packed = value.V;
            return value.V >> 63 == 0;
        }

        public static Word Unpack(ulong packed) => new(packed);
    }

    [Theory]
    [InlineData(4, 1UL, 0x5eed_d001UL, 300UL)]
    [InlineData(8, 1UL, 0x5eed_d002UL, 4_000UL)]
    [InlineData(64, 1UL, 0x5eed_d003UL, 50_000UL)]
    [InlineData(8, 4096UL, 0x5eed_d004UL, 3_000UL)]
    [InlineData(64, 4096UL, 0x5eed_d005UL, 20_000UL)]
    [InlineData(5, 3UL, 0x5eed_d006UL, 2_000UL)]
    public void RandomOperations_OverPackedLeaves_MatchPerGranuleDictionary(int capacity, ulong unit, ulong seed, ulong granules)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        var naive = new SortedDictionary<ulong, ulong>();
        int packedSeen = 0;
        for (int round = 0; round < 6; round++)
        {
            // A fill in key order of one-unit runs that continue nothing (a page table populated over
            // shattered frames) packs leaves; the random operations after it open, trim and refill them.
            ulong from = rng.Next() % granules;
            ulong fillLength = Math.Min(granules - from, (ulong)(capacity * 12));
            for (ulong g = from; g < from + fillLength; g++)
            {
                ulong v = (rng.Next() % 1_000_000) << 16;
                map.Set(g * unit, (g * unit) + unit - 1, new Word(v));
                NaiveSet(naive, g, g, v, unit);
                Check(map, naive, unit, rng, $"seed 0x{seed:x} round {round} fill {g}");
            }
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
            Ordered(map, naive, unit, from, from + fillLength - 1, granules, rng, $"seed 0x{seed:x} round {round}");
            for (int step = 0; step < 400; step++)
            {
                Step(map, naive, unit, granules, rng);
                Check(map, naive, unit, rng, $"seed 0x{seed:x} round {round} step {step}");
            }
        }
        Assert.True(packedSeen > 0, "no leaf was ever packed: the test did not exercise the packed form");
    }

    [Fact]
    public void SequentialFill_OfOnePageRuns_PacksEveryFullLeaf_AndRemovalInOrderEmptiesIt()
    {
        var map = new RunMap<Pte>();
        const ulong pages = 64 * 100;
        for (ulong i = 0; i < pages; i++)
        {
            // Scattered frames: pfn of page i is never pfn of page i-1 plus one.
            map.Set(i, i, new Pte(new Pfn((i * 7919) % 100_003), Writable: i % 3 != 0));
        }
        map.AssertValid();
        Assert.Equal((int)pages, map.Count);
        Assert.Equal(100, map.PackedLeafCount());
        Assert.True(map.TryGet(1000, out Run<Pte> r));
        Assert.Equal(new Run<Pte>(1000, 1000, new Pte(new Pfn(1000 * 7919 % 100_003), Writable: true)), r);
        for (ulong i = 0; i < pages; i += 2)
        {
            map.Remove(i, i + 1);
            map.AssertValid();
        }
        Assert.True(map.IsEmpty);
    }

    [Fact]
    public void IommuTable_OfFourKiBRuns_Packs_AndHugeRunsStayOneSparseRun()
    {
        var map = new RunMap<IopteRun>(32);
        for (ulong i = 0; i < 32 * 10; i++)
        {
            map.Set(i << 12, (i << 12) + 0xFFF, new IopteRun(new PhysAddr(((i * 31) % 997) << 12), 4096, IommuProt.ReadWrite | IommuProt.Cache));
        }
        map.AssertValid();
        Assert.Equal(10, map.PackedLeafCount());
        Assert.True(map.TryGetValue(0x5123, out IopteRun v));
        Assert.Equal(new IopteRun(new PhysAddr((5 * 31 % 997 << 12) + 0x123), 4096, IommuProt.ReadWrite | IommuProt.Cache), v);

        // Contiguous memory on 1 GiB pages: one run for 1 TiB, never packed.
        var huge = new RunMap<IopteRun>(32);
        for (ulong g = 0; g < 1024; g++)
        {
            huge.Set(g << 30, (g << 30) + (1UL << 30) - 1, new IopteRun(new PhysAddr(g << 30), 1UL << 30, IommuProt.ReadWrite));
        }
        Assert.Equal(1, huge.Count);
        Assert.Equal(0, huge.PackedLeafCount());
    }

    [Fact]
    public void Pack_RoundTripsTheHotValueTypes()
    {
        Pte[] ptes = [new(new Pfn(0), false), new(new Pfn((1UL << 62) - 1), true), Pte.Zero(new Pfn(77)), new(new Pfn(5), true, true)];
        foreach (Pte p in ptes)
        {
            Assert.True(Pte.TryPack(p, out ulong w));
            Assert.Equal(p, Pte.Unpack(w));
        }
        Assert.False(Pte.TryPack(new Pte(new Pfn(1UL << 62), false), out _));
        IopteRun[] ioptes = [new(new PhysAddr(0), 4096, IommuProt.None), new(new PhysAddr(0xFFFF_FFFF_FFFF_F000), 1UL << 63, (IommuProt)0x3F),
            new(new PhysAddr(1UL << 40), 1UL << 21, IommuProt.Read | IommuProt.Mmio)];
        foreach (IopteRun i in ioptes)
        {
            Assert.True(IopteRun.TryPack(i, out ulong w));
            Assert.Equal(i, IopteRun.Unpack(w));
        }
        Assert.False(IopteRun.TryPack(new IopteRun(new PhysAddr(0x1800), 4096, IommuProt.Read), out _));
        Assert.False(IopteRun.TryPack(new IopteRun(new PhysAddr(0), 4096, (IommuProt)0x40), out _));
        Assert.True(FrameCount.TryPack(new FrameCount(ulong.MaxValue), out ulong c));
        Assert.Equal(new FrameCount(ulong.MaxValue), FrameCount.Unpack(c));
        Assert.True(PfnValue.TryPack(new PfnValue(new Pfn(123)), out ulong p2));
        Assert.Equal(new PfnValue(new Pfn(123)), PfnValue.Unpack(p2));
    }

    // The edits a packed leaf takes without opening, and their edges: values replaced in place (some that do
    // not pack), whole runs trimmed off the front (UNMAP in IOVA order) and the back, runs put back in front
    // of the first (a fill downwards) and after the last.
    private static void Ordered(RunMap<Word> map, SortedDictionary<ulong, ulong> naive, ulong unit, ulong lo, ulong hi, ulong granules, SplitMix64 rng, string where)
    {
        for (int k = 0; k < 40 && lo <= hi; k++)
        {
            ulong g = lo + (rng.Next() % (hi - lo + 1));
            ulong v = rng.Next() % 5 == 0 ? (1UL << 63) | (rng.Next() % 1000) : (rng.Next() % 1_000_000) << 16;
            map.Set(g * unit, (g * unit) + unit - 1, new Word(v));
            NaiveSet(naive, g, g, v, unit);
            Check(map, naive, unit, rng, $"{where} replace {g}");
        }
        for (int k = 0; k < 150 && lo < hi; k++)
        {
            ulong g = k % 3 == 2 ? hi-- : lo++;
            map.Remove(g * unit, (g * unit) + unit - 1);
            naive.Remove(g);
            Check(map, naive, unit, rng, $"{where} trim {g}");
        }
        for (int k = 0; k < 150; k++)
        {
            bool down = k % 3 != 2;
            if (down ? lo == 0 : hi + 1 >= granules)
            {
                continue;
            }
            ulong g = down ? --lo : ++hi;
            ulong v = (rng.Next() % 1_000_000) << 16;
            Assert.True(map.TryInsert(g * unit, (g * unit) + unit - 1, new Word(v)) || naive.ContainsKey(g), $"{where} refill {g}");
            if (!naive.ContainsKey(g))
            {
                NaiveSet(naive, g, g, v, unit);
            }
            Check(map, naive, unit, rng, $"{where} refill {g}");
        }
    }

    // One random operation over granule-aligned ranges (unit > 1) or any range (unit 1): Set, Remove,
    // TryInsert, Insert into a free range, and an adjust (every run of a range re-set to its value plus
    // one, as reference counts are), with run lengths from one granule to a tenth of the key range.
    private static void Step(RunMap<Word> map, SortedDictionary<ulong, ulong> naive, ulong unit, ulong granules, SplitMix64 rng)
    {
        ulong op = rng.Next() % 12;
        ulong g0 = rng.Next() % granules;
        ulong len = rng.Next() % 6 == 0 ? 1 + (rng.Next() % Math.Max(1, granules / 10)) : 1 + (rng.Next() % 3);
        ulong g1 = Math.Min(g0 + len - 1, granules - 1);
        ulong start = g0 * unit;
        ulong last = (g1 * unit) + unit - 1;
        // Values that continue the run before (start-based) make merges; others, unpackable ones included, do not.
        ulong v = (rng.Next() % 4) switch
        {
            0 => naive.TryGetValue(g0 - 1, out ulong before) ? before + unit : 7,
            1 => (1UL << 63) | (rng.Next() % 1000),
            _ => (rng.Next() % 1_000_000) << 16,
        };
        switch (op)
        {
            case < 3:
                map.Remove(start, last);
                for (ulong g = g0; g <= g1; g++)
                {
                    naive.Remove(g);
                }
                break;
            case < 5:
                bool free = !Enumerable.Range(0, (int)(g1 - g0 + 1)).Any(i => naive.ContainsKey(g0 + (ulong)i));
                Assert.Equal(free, map.TryInsert(start, last, new Word(v)));
                if (free)
                {
                    NaiveSet(naive, g0, g1, v, unit);
                }
                break;
            case 5:
                if (!map.Overlaps(start, last))
                {
                    map.Insert(start, last, new Word(v));
                    NaiveSet(naive, g0, g1, v, unit);
                }
                break;
            case < 8:
                var runs = new List<Run<Word>>();
                foreach (Run<Word> r in map.Overlapping(start, last))
                {
                    runs.Add(r);
                }
                foreach (Run<Word> r in runs)
                {
                    map.Set(r.Start, r.Last, new Word(r.Value.V + 1));
                    for (ulong g = r.Start / unit; g <= r.Last / unit; g++)
                    {
                        naive[g]++;
                    }
                }
                break;
            default:
                map.Set(start, last, new Word(v));
                NaiveSet(naive, g0, g1, v, unit);
                break;
        }
    }

    private static void NaiveSet(SortedDictionary<ulong, ulong> naive, ulong g0, ulong g1, ulong v, ulong unit)
    {
        for (ulong g = g0; g <= g1; g++)
        {
            naive[g] = v + ((g - g0) * unit);
        }
    }

    // The naive granules grouped into maximal runs of consecutive granules with continuing values.
    private static List<Run<Word>> NaiveRuns(SortedDictionary<ulong, ulong> naive, ulong unit)
    {
        var runs = new List<Run<Word>>();
        foreach ((ulong g, ulong v) in naive)
        {
            ulong start = g * unit;
            if (runs.Count > 0 && runs[^1].Last + 1 == start && runs[^1].Value.V + (start - runs[^1].Start) == v)
            {
                runs[^1] = runs[^1] with { Last = start + unit - 1 };
            }
            else
            {
                runs.Add(new Run<Word>(start, start + unit - 1, new Word(v)));
            }
        }
        return runs;
    }

    private static void Check(RunMap<Word> map, SortedDictionary<ulong, ulong> naive, ulong unit, SplitMix64 rng, string where)
    {
        map.AssertValid();
        List<Run<Word>> expected = NaiveRuns(naive, unit);
        var actual = new List<Run<Word>>();
        foreach (Run<Word> r in map.All())
        {
            actual.Add(r);
        }
        Assert.True(expected.SequenceEqual(actual), $"{where}: runs differ ({expected.Count} expected, {actual.Count} in the map)");
        Assert.Equal(expected.Count, map.Count);
        if (expected.Count == 0)
        {
            return;
        }
        // Lookups at a run's edges and inside it, and a clipped range across several runs.
        Run<Word> pick = expected[(int)(rng.Next() % (ulong)expected.Count)];
        foreach (ulong key in new[] { pick.Start, pick.Last, pick.Start + ((pick.Last - pick.Start) / 2) })
        {
            Assert.True(map.TryGet(key, out Run<Word> got) && got == pick, $"{where}: TryGet 0x{key:x}");
            Assert.True(map.TryGetValue(key, out Word value) && value.V == pick.Value.V + (key - pick.Start), $"{where}: TryGetValue 0x{key:x}");
        }
        ulong before = pick.Start == 0 ? 0 : pick.Start - 1;
        Assert.Equal(naive.ContainsKey(before / unit), map.TryGet(before, out _));
        Assert.True(map.TryGetAtOrAfter(pick.Start, out Run<Word> after) && after == pick, $"{where}: at-or-after");
        Assert.True(map.TryGetAtOrBefore(pick.Last, out Run<Word> atOrBefore) && atOrBefore == pick, $"{where}: at-or-before");
        ulong lo = pick.Start + ((pick.Last - pick.Start) / 3);
        ulong hi = lo + (unit * 5);
        var clipped = new List<Run<Word>>();
        foreach (Run<Word> r in map.Overlapping(lo, hi))
        {
            clipped.Add(r);
        }
        List<Run<Word>> want = expected.Where(r => r.Start <= hi && r.Last >= lo)
            .Select(r => new Run<Word>(Math.Max(r.Start, lo), Math.Min(r.Last, hi), r.Value.Advance(Math.Max(r.Start, lo) - r.Start))).ToList();
        Assert.True(want.SequenceEqual(clipped), $"{where}: Overlapping(0x{lo:x}, 0x{hi:x})");
        Assert.Equal(want.Count != 0, map.Overlaps(lo, hi));
    }
}
