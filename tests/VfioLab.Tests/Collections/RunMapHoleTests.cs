using VfioLab.Collections;
using VfioLab.Host;

namespace VfioLab.Tests.Collections;

/// <summary>
/// The hole <see cref="RunMap{T}.TryRemoveExactOne"/> leaves: the removal is done but the leaf's later entries are
/// shifted down only when something else touches the map, and <see cref="RunMap{T}.TryInsertOne"/> of a run that goes
/// exactly there overwrites the slot instead (issue 16's 4 KiB UNMAP then MAP of the same IOVA). Against a twin map that
/// takes only the general calls (<see cref="RunMap{T}.TryRemoveExact"/>, <see cref="RunMap{T}.TryInsert"/>): every
/// read and every other change made while a removal is pending must answer as on the twin, and the map must end as the
/// twin after the insert that fills the hole, refuses, joins a neighbour or goes elsewhere. No check that would close the
/// hole (<see cref="RunMap{T}.AssertValid"/>, <see cref="RunMap{T}.All"/>) runs between the removal and what follows it.
/// </summary>
public sealed class RunMapHoleTests
{
    [Theory]
    [InlineData(4, 0x401e_0001UL)]
    [InlineData(8, 0x401e_0002UL)]
    [InlineData(64, 0x401e_0003UL)]
    public void PendingRemoval_EveryCallAfterIt_AnswersAsTwin(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<FrameCount>(capacity);
        var twin = new RunMap<FrameCount>(capacity);
        ulong keys = (ulong)capacity * 40;
        // Start from one-key runs at every other key (valued 1 to 3: some neighbours join), full leaves.
        for (ulong k = 0; k < keys; k += 2)
        {
            var v = new FrameCount(1 + (k / 2 % 3));
            Assert.Equal(twin.TryInsert(k, k, v), map.TryInsertOne(k, k, v));
        }
        Run<FrameCount> removed = default;
        bool haveRemoved = false;
        int holes = 0;
        int insertsOverHole = 0;
        int callsOverHole = 0;
        for (int step = 0; step < 20_000; step++)
        {
            string where = $"capacity {capacity} seed 0x{seed:x} step {step}";
            ulong kind = rng.Next() % 8;
            if (kind < 3)
            {
                if (!twin.TryGetAtOrAfter(rng.Next() % keys, out Run<FrameCount> r))
                {
                    continue;
                }
                // Sometimes bounds no run has: nothing changes.
                ulong last = rng.Next() % 8 == 0 ? r.Last + 1 : r.Last;
                bool expected = twin.TryRemoveExact(r.Start, last, out FrameCount ev);
                bool got = map.TryRemoveExactOne(r.Start, last, out FrameCount gv);
                Assert.True(expected == got && ev == gv, $"{where}: remove [{r.Start}, {last}] {got} {gv}, twin {expected} {ev}");
                if (got)
                {
                    removed = new Run<FrameCount>(r.Start, last, gv);
                    haveRemoved = true;
                }
                holes += map.HasPendingRemoval ? 1 : 0;
            }
            else if (kind < 6)
            {
                (ulong start, ulong last, FrameCount value) = DrawInsert(ref rng, haveRemoved, removed, keys);
                insertsOverHole += map.HasPendingRemoval ? 1 : 0;
                bool expected = twin.TryInsert(start, last, value);
                bool got = map.TryInsertOne(start, last, value);
                Assert.True(expected == got, $"{where}: insert [{start}, {last}] {value.Count}: {got}, twin {expected}");
                Assert.False(map.HasPendingRemoval, $"{where}: an insert left the hole open");
            }
            else
            {
                callsOverHole += map.HasPendingRemoval ? 1 : 0;
                if (OtherCall(ref rng, map, twin, keys, where))
                {
                    Assert.False(map.HasPendingRemoval, $"{where}: a call left the hole open");
                }
            }
            Assert.Equal(twin.Count, map.Count);
            if (step % 64 == 63)
            {
                map.AssertValid();
                Assert.Equal([.. twin.All()], [.. map.All()]);
            }
        }
        map.AssertValid();
        Assert.Equal([.. twin.All()], [.. map.All()]);
        Assert.True(holes > 1000 && insertsOverHole > 1000 && callsOverHole > 500,
            $"holes {holes}, inserts over one {insertsOverHole}, other calls over one {callsOverHole}: every path must run");
    }

    [Fact]
    public void RemoveThenInsertSameRun_RepeatedInMidLeaf_LeavesTheMapAsBefore()
    {
        var map = new RunMap<FrameCount>();
        for (ulong k = 0; k < 64 * 8; k += 2)
        {
            map.Insert(k, k, new FrameCount(1 + (k / 2 % 3)));
        }
        // Split a full leaf so that the slot sits in the middle of a sparse one, as the IOMMU table's probe does.
        Assert.True(map.TryInsertOne(201, 201, new FrameCount(7)));
        Run<FrameCount>[] before = [.. map.All()];
        for (int i = 0; i < 100; i++)
        {
            Assert.True(map.TryRemoveExactOne(201, 201, out FrameCount v));
            Assert.Equal(new FrameCount(7), v);
            Assert.True(map.HasPendingRemoval);
            Assert.Equal(before.Length - 1, map.Count);
            Assert.True(map.TryInsertOne(201, 201, new FrameCount(7)));
            Assert.False(map.HasPendingRemoval);
        }
        map.AssertValid();
        Assert.Equal(before, (Run<FrameCount>[])[.. map.All()]);
        // The removal seen by each reader while it is pending.
        Assert.True(map.TryRemoveExactOne(201, 201, out _));
        Assert.False(map.TryGet(201, out _));
        Assert.True(map.TryGetAtOrAfter(201, out Run<FrameCount> after));
        Assert.Equal(202UL, after.Start);
        Assert.False(map.HasPendingRemoval);
        Assert.Equal(before.Where(r => r.Start != 201).ToArray(), (Run<FrameCount>[])[.. map.All()]);
        map.AssertValid();
    }

    private static (ulong Start, ulong Last, FrameCount Value) DrawInsert(ref SplitMix64 rng, bool haveRemoved, Run<FrameCount> removed, ulong keys)
    {
        if (!haveRemoved || rng.Next() % 4 == 0)
        {
            ulong s = rng.Next() % keys;
            return (s, s + (rng.Next() % 4 == 0 ? 1UL : 0UL), new FrameCount(1 + (rng.Next() % 3)));
        }
        // Around the last removed run: the same run (fills the hole), another value (may join a neighbour), one key
        // wider on either side (may overlap or touch a neighbour), or shorter.
        return (rng.Next() % 6) switch
        {
            0 or 1 => (removed.Start, removed.Last, removed.Value),
            2 => (removed.Start, removed.Last, new FrameCount(1 + (rng.Next() % 3))),
            3 => (removed.Start, removed.Last + 1, removed.Value),
            4 => (removed.Start == 0 ? 0 : removed.Start - 1, removed.Last, removed.Value),
            _ => (removed.Start, removed.Start, removed.Value),
        };
    }

    // One call of every other kind, on both maps, with the answers compared; false when the twin's answer made it
    // pointless (an insert over mapped keys, a removal with nothing to remove).
    private static bool OtherCall(ref SplitMix64 rng, RunMap<FrameCount> map, RunMap<FrameCount> twin, ulong keys, string where)
    {
        ulong key = rng.Next() % keys;
        ulong last = key + (rng.Next() % 6);
        switch (rng.Next() % 17)
        {
            case 0:
                Assert.True(twin.TryGet(key, out Run<FrameCount> a) == map.TryGet(key, out Run<FrameCount> b) && a == b, $"{where}: TryGet {key}");
                break;
            case 1:
                Assert.True(twin.TryGetValue(key, out FrameCount va) == map.TryGetValue(key, out FrameCount vb) && va == vb, $"{where}: TryGetValue {key}");
                break;
            case 2:
                Assert.True(twin.TryGetAtOrAfter(key, out Run<FrameCount> a2) == map.TryGetAtOrAfter(key, out Run<FrameCount> b2) && a2 == b2, $"{where}: TryGetAtOrAfter {key}");
                break;
            case 3:
                Assert.True(twin.TryGetAtOrBefore(key, out Run<FrameCount> a3) == map.TryGetAtOrBefore(key, out Run<FrameCount> b3) && a3 == b3, $"{where}: TryGetAtOrBefore {key}");
                break;
            case 4:
                Assert.True(twin.Overlaps(key, last) == map.Overlaps(key, last), $"{where}: Overlaps [{key}, {last}]");
                Assert.True(twin.Covers(key, last) == map.Covers(key, last), $"{where}: Covers [{key}, {last}]");
                break;
            case 5:
                {
                    var va5 = new Recorder();
                    var vb5 = new Recorder();
                    twin.Visit(key, last + 40, ref va5);
                    map.Visit(key, last + 40, ref vb5);
                    Assert.True(va5.Seen.SequenceEqual(vb5.Seen), $"{where}: Visit [{key}, {last + 40}]");
                    break;
                }
            case 6:
                {
                    var va6 = new Recorder();
                    var vb6 = new Recorder();
                    twin.VisitPacked(key, last + 40, ref va6);
                    map.VisitPacked(key, last + 40, ref vb6);
                    Assert.True(va6.Seen.SequenceEqual(vb6.Seen), $"{where}: VisitPacked [{key}, {last + 40}]");
                    break;
                }
            case 7:
                Assert.True(((Run<FrameCount>[])[.. twin.Overlapping(key, last + 40)]).SequenceEqual([.. map.Overlapping(key, last + 40)]), $"{where}: Overlapping [{key}, {last + 40}]");
                break;
            case 8:
                Assert.True(twin.PackedLeafCount() == map.PackedLeafCount() && twin.ApproximateBytes() == map.ApproximateBytes(), $"{where}: leaves and bytes");
                break;
            case 9:
                {
                    var v9 = new FrameCount(1 + (rng.Next() % 3));
                    twin.Set(key, last, v9);
                    map.Set(key, last, v9);
                    break;
                }
            case 10:
                twin.Remove(key, last);
                map.Remove(key, last);
                break;
            case 11:
                {
                    var v11 = new FrameCount(1 + (rng.Next() % 3));
                    Assert.True(twin.TryInsert(key, last, v11) == map.TryInsert(key, last, v11), $"{where}: TryInsert [{key}, {last}]");
                    break;
                }
            case 12:
                if (twin.Overlaps(key, key))
                {
                    return false;
                }
                twin.Insert(key, key, new FrameCount(2));
                map.Insert(key, key, new FrameCount(2));
                break;
            case 13:
                {
                    // Two runs into free keys past the others, in one call.
                    ulong from = keys + (rng.Next() % keys);
                    Run<FrameCount>[] runs = [new(from, from, new FrameCount(1)), new(from + 2, from + 3, new FrameCount(2))];
                    if (twin.Overlaps(from, from + 3))
                    {
                        return false;
                    }
                    twin.InsertSorted(runs);
                    map.InsertSorted(runs);
                    break;
                }
            case 14:
                {
                    var ba = new PlusOne(key, last);
                    var bb = new PlusOne(key, last);
                    twin.UpdateSorted(ref ba);
                    map.UpdateSorted(ref bb);
                    break;
                }
            case 15:
                if (!twin.TryGetAtOrAfter(key, out Run<FrameCount> r15))
                {
                    return false;
                }
                Assert.True(twin.TryRemoveExact(r15.Start, r15.Last, out FrameCount x) == map.TryRemoveExact(r15.Start, r15.Last, out FrameCount y) && x == y,
                    $"{where}: TryRemoveExact [{r15.Start}, {r15.Last}]");
                break;
            default:
                if (rng.Next() % 32 == 0)
                {
                    twin.Clear();
                    map.Clear();
                }
                else
                {
                    Assert.True(((Run<FrameCount>[])[.. twin.All()]).SequenceEqual([.. map.All()]), $"{where}: All");
                }
                break;
        }
        return true;
    }

    private struct Recorder() : IPackedRunVisitor<FrameCount>
    {
        public List<Run<FrameCount>> Seen = [];

        public readonly bool Visit(ulong start, ulong last, FrameCount value)
        {
            Seen.Add(new Run<FrameCount>(start, last, value));
            return true;
        }

        public readonly bool VisitPacked(ulong start, ulong unit, ReadOnlySpan<ulong> packed)
        {
            for (int k = 0; k < packed.Length; k++)
            {
                ulong s = start + ((ulong)k * unit);
                Seen.Add(new Run<FrameCount>(s, s + unit - 1, FrameCount.Unpack(packed[k])));
            }
            return true;
        }
    }

    // One range, each key's count raised by one (absent keys get 1).
    private readonly struct PlusOne(ulong start, ulong last) : IRunBatch<FrameCount>
    {
        public int Count => 1;

        public ulong StartOf(int i) => start;

        public ulong LastOf(int i) => last;

        public bool Apply(ulong start, ulong last, bool mapped, FrameCount value, out FrameCount result)
        {
            result = new FrameCount(mapped ? value.Count + 1 : 1);
            return true;
        }
    }
}
