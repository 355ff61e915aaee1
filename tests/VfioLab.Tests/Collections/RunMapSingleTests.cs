using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using static VfioLab.Tests.Collections.RunMapDenseTests;

namespace VfioLab.Tests.Collections;

/// <summary>
/// <see cref="RunMap{T}.TryInsertOne"/> and <see cref="RunMap{T}.TryRemoveExactOne"/> (a 4 KiB map's and unmap's IOPTE
/// run, the leaf shifted in managed code) against <see cref="RunMap{T}.TryInsert"/> and
/// <see cref="RunMap{T}.TryRemoveExact"/> on a twin map: the same answers and the same map after every call (runs, count,
/// packed leaves, the tree's invariants), with 4- to 64-entry nodes so that full leaves, splits, merges and packed leaves
/// all occur, for values of 8 bytes, of 24 bytes (an IOPTE run: every shift length modulo the 32-byte block) and with a
/// reference (moved one by one).
/// </summary>
public sealed class RunMapSingleTests
{
    [Theory]
    [InlineData(4, 0x5eed_f001UL)]
    [InlineData(8, 0x5eed_f002UL)]
    [InlineData(64, 0x5eed_f003UL)]
    public void OneRunInAndOut_Words_EndAsTryInsertAndTryRemoveExact(int capacity, ulong seed) =>
        Exercise(capacity, seed, k => new Word(k << 20), (a, b) => a.Equals(b));

    [Theory]
    [InlineData(5, 0x5eed_f004UL)]
    [InlineData(64, 0x5eed_f005UL)]
    public void OneRunInAndOut_IopteRuns_EndAsTryInsertAndTryRemoveExact(int capacity, ulong seed) =>
        Exercise(capacity, seed, k => new IopteRun(new PhysAddr((k % 4096) << 24), 4096, IommuProt.Read), (a, b) => a.Equals(b));

    [Theory]
    [InlineData(6, 0x5eed_f006UL)]
    [InlineData(64, 0x5eed_f007UL)]
    public void OneRunInAndOut_ValuesWithReferences_EndAsTryInsertAndTryRemoveExact(int capacity, ulong seed) =>
        Exercise(capacity, seed, k => new Tagged(k << 20, $"t{k % 7}"), (a, b) => a.Equals(b));

    [Fact]
    public void TryInsertOne_EmptyMapThenNeighbours_JoinsAndRefusesAsTryInsert()
    {
        var map = new RunMap<FrameCount>();
        Assert.True(map.TryInsertOne(10, 19, new FrameCount(1)));
        Assert.False(map.TryInsertOne(19, 25, new FrameCount(1)));
        Assert.True(map.TryInsertOne(20, 29, new FrameCount(1)));
        Assert.Equal([new Run<FrameCount>(10, 29, new FrameCount(1))], [.. map.All()]);
        Assert.True(map.TryRemoveExactOne(10, 29, out FrameCount v));
        Assert.Equal(new FrameCount(1), v);
        Assert.False(map.TryRemoveExactOne(10, 29, out _));
        Assert.True(map.IsEmpty);
        map.AssertValid();
    }

    /// <summary>The one-run lanes start from the leaf the last one found (the finger) while the map is unchanged: any
    /// other change in between (a general insert, set, removal or clear, which may split, merge, pack or drop that leaf)
    /// must send them back to a descent. One-run calls mixed with general ones in a small key space, against a twin that
    /// takes only the general ones, must end alike after every call.</summary>
    [Theory]
    [InlineData(4, 0x5eed_f101UL)]
    [InlineData(8, 0x5eed_f102UL)]
    [InlineData(64, 0x5eed_f103UL)]
    public void OneRunCalls_BetweenGeneralChanges_EndAsTwin(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        var twin = new RunMap<Word>(capacity);
        ulong keys = (ulong)(capacity * 30);
        int ones = 0;
        int general = 0;
        for (int step = 0; step < 8000; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            ulong start = rng.Next() % keys;
            switch (rng.Next() % 8)
            {
                case 0:
                    {
                        ulong last = start + (rng.Next() % 8);
                        var value = new Word((rng.Next() % 3) << 20);
                        map.Set(start, last, value);
                        twin.Set(start, last, value);
                        general++;
                        break;
                    }
                case 1:
                    {
                        ulong last = start + (rng.Next() % 16);
                        map.Remove(start, last);
                        twin.Remove(start, last);
                        general++;
                        break;
                    }
                case 2 when rng.Next() % 64 == 0:
                    map.Clear();
                    twin.Clear();
                    general++;
                    break;
                case 3:
                    {
                        var value = new Word(start << 20);
                        Assert.Equal(twin.TryInsert(start, start + 1, value), map.TryInsert(start, start + 1, value));
                        general++;
                        break;
                    }
                case 4:
                case 5:
                    {
                        var value = new Word(start << 20);
                        bool expected = twin.TryInsert(start, start, value);
                        Assert.True(expected == map.TryInsertOne(start, start, value), $"{where}: insert one at {start}");
                        ones++;
                        break;
                    }
                default:
                    {
                        if (!twin.TryGetAtOrAfter(start, out Run<Word> r))
                        {
                            break;
                        }
                        bool expected = twin.TryRemoveExact(r.Start, r.Last, out Word ev);
                        bool got = map.TryRemoveExactOne(r.Start, r.Last, out Word gv);
                        Assert.True(expected == got && ev.Equals(gv), $"{where}: remove [{r.Start}, {r.Last}]");
                        ones++;
                        break;
                    }
            }
            map.AssertValid();
            Assert.Equal(twin.Count, map.Count);
            if (step % 8 == 0)
            {
                Assert.Equal([.. twin.All()], [.. map.All()]);
            }
        }
        Assert.Equal([.. twin.All()], [.. map.All()]);
        Assert.True(ones > 2000 && general > 2000, $"one-run calls {ones}, general {general}: both must run");
    }

    internal readonly record struct Tagged(ulong V, string? Tag) : IRunValue<Tagged>
    {
        public static bool Packs => false;

        public Tagged Advance(ulong offset) => this with { V = V + offset };

        public static bool TryPack(Tagged value, out ulong packed)
        {
            packed = 0;
            return false;
        }

        public static Tagged Unpack(ulong packed) => new(packed, null);
    }

    private static void Exercise<T>(int capacity, ulong seed, Func<ulong, T> valueAt, Func<T, T, bool> same)
        where T : struct, IRunValue<T>
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<T>(capacity);
        var twin = new RunMap<T>(capacity);
        int inserted = 0;
        int refused = 0;
        int removed = 0;
        int packedSeen = 0;
        for (int step = 0; step < 6000; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            if (step % 1000 == 0)
            {
                // Back-to-back one-unit runs in key order past the random keys: leaves fill and pack (packed leaves are
                // then handed to the general paths, and their ends trimmed by removals).
                ulong from = (ulong)(capacity * 40) + ((ulong)step / 1000 * (ulong)capacity * 4);
                for (ulong k = from; k < from + (ulong)(capacity * 3); k++)
                {
                    Assert.Equal(twin.TryInsert(k, k, valueAt(k)), map.TryInsertOne(k, k, valueAt(k)));
                }
            }
            if (rng.Next() % 3 != 0)
            {
                // Mostly one-unit runs in a small key space (full leaves, neighbours that touch), some that continue
                // their left neighbour (the general path's joins), some longer ones.
                ulong start = rng.Next() % (ulong)(capacity * 40);
                ulong last = start + (rng.Next() % 4 == 0 ? rng.Next() % 3 : 0);
                T value = valueAt(start);
                if (rng.Next() % 5 == 0 && twin.TryGet(start == 0 ? 0 : start - 1, out Run<T> left) && left.Last == start - 1)
                {
                    value = left.Value.Advance(start - left.Start);
                }
                bool expected = twin.TryInsert(start, last, value);
                bool got = map.TryInsertOne(start, last, value);
                Assert.True(expected == got, $"{where}: insert [{start}, {last}] {got}, TryInsert {expected}");
                inserted += got ? 1 : 0;
                refused += got ? 0 : 1;
            }
            else
            {
                Run<T>[] runs = [.. twin.All()];
                if (runs.Length == 0)
                {
                    continue;
                }
                Run<T> r = runs[rng.Next() % (ulong)runs.Length];
                ulong last = rng.Next() % 4 == 0 ? r.Last + 1 : r.Last;
                bool expected = twin.TryRemoveExact(r.Start, last, out T expectedValue);
                bool got = map.TryRemoveExactOne(r.Start, last, out T value);
                Assert.True(expected == got, $"{where}: remove [{r.Start}, {last}] {got}, TryRemoveExact {expected}");
                Assert.True(same(expectedValue, value), $"{where}: removed {value}, TryRemoveExact {expectedValue}");
                removed += got ? 1 : 0;
            }
            map.AssertValid();
            Assert.Equal(twin.Count, map.Count);
            Assert.Equal(twin.PackedLeafCount(), map.PackedLeafCount());
            if (step % 16 == 0)
            {
                Assert.Equal([.. twin.All()], [.. map.All()]);
            }
            packedSeen = Math.Max(packedSeen, map.PackedLeafCount());
        }
        Assert.Equal([.. twin.All()], [.. map.All()]);
        Assert.True(inserted > 500 && refused > 100 && removed > 500, $"inserted {inserted}, refused {refused}, removed {removed}: every path must run");
        if (T.Packs)
        {
            Assert.True(packedSeen > 0, "no leaf was ever packed: the packed form was not exercised");
        }
    }
}
