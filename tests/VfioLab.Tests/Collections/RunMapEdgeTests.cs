using VfioLab.Collections;
using VfioLab.Host;
using static VfioLab.Tests.Collections.RunMapDenseTests;

namespace VfioLab.Tests.Collections;

/// <summary>
/// The 4 KiB pair's one-key paths of issue 16 (branch pair10) against the general calls on a twin: the pin map's drop of
/// a frame that ends its run (<see cref="RunMap{T}.TryRemoveLastKey"/> against <see cref="RunMap{T}.Remove"/> of that
/// key), the IOMMU table's removal of the run the last one-run insert put in (<see cref="RunMap{T}.TryRemoveExactOne"/>
/// taking the remembered slot, against <see cref="RunMap{T}.TryRemoveExact"/>), and the dirty map's one-frame mark that
/// skips a frame it marked last (<see cref="FrameFlagMap.SetUnlessAllSet"/>, against a per-frame array).
/// </summary>
public sealed class RunMapEdgeTests
{
    /// <summary>Frames pinned one at a time next to each other (runs that grow and shrink at their ends, as the pair's
    /// pin map), with counts above one, runs cut in the middle and general changes between, in 4- to 64-entry nodes (full,
    /// split, merged and packed leaves): <see cref="RunMap{T}.TryRemoveLastKey"/> must answer whether the key ends a run
    /// holding the expected value and leave the map as <see cref="RunMap{T}.Remove"/> of the key does on the twin, or
    /// change nothing.</summary>
    [Theory]
    [InlineData(4, 0x5eed_e001UL)]
    [InlineData(8, 0x5eed_e002UL)]
    [InlineData(64, 0x5eed_e003UL)]
    public void TryRemoveLastKey_EndsAsRemoveOfTheKeyOrChangesNothing(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<FrameCount>(capacity);
        var twin = new RunMap<FrameCount>(capacity);
        // Dense enough that pins meet neighbours (runs of several keys) in every node size.
        ulong keys = (ulong)Math.Min(capacity * 40, 640);
        int trimmed = 0;
        int alone = 0;
        int declined = 0;
        for (int step = 0; step < 10000; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            ulong key = rng.Next() % keys;
            switch (rng.Next() % 6)
            {
                case 0:
                case 1:
                    {
                        // A pin: count 1 where free (joining a neighbour of count 1), else one more.
                        var value = new FrameCount(twin.TryGetValue(key, out FrameCount c) ? c.Count + 1 : 1);
                        map.Set(key, key, value);
                        twin.Set(key, key, value);
                        break;
                    }
                case 2 when rng.Next() % 4 == 0:
                    {
                        ulong last = key + (rng.Next() % 12);
                        map.Remove(key, last);
                        twin.Remove(key, last);
                        break;
                    }
                default:
                    {
                        // Mostly the last key of a run, else any key; mostly count 1, sometimes 2.
                        if (rng.Next() % 4 != 0 && twin.TryGetAtOrAfter(key, out Run<FrameCount> r))
                        {
                            key = r.Last;
                        }
                        var expected = new FrameCount(rng.Next() % 5 == 0 ? 2UL : 1UL);
                        bool ends = twin.TryGet(key, out Run<FrameCount> holder) && holder.Last == key && holder.Value.Equals(expected);
                        bool got = map.TryRemoveLastKey(key, expected);
                        if (got)
                        {
                            alone += holder.Start == key ? 1 : 0;
                            trimmed += holder.Start != key ? 1 : 0;
                            twin.Remove(key, key);
                        }
                        else
                        {
                            declined++;
                        }
                        // A run holding the key at its end may still be declined when it lies in the leaf before the one
                        // the key routes to (the caller then takes the general calls); never the other way round.
                        Assert.True(!got || ends, $"{where}: removed {key}, which ends no run of value {expected.Count}");
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
        Assert.True(trimmed > 100 && alone > 300 && declined > 300, $"trimmed {trimmed}, alone {alone}, declined {declined}: every case must run");
    }

    /// <summary>The pin map's one-frame pin and unpin as the pair makes them (branch pair12): a few hot keys pinned and
    /// unpinned in turn at the end of their runs, where each move remembers the run it extended or shrank and the next
    /// move of that key takes it without a descent, between random pins, cuts and count changes elsewhere (which must
    /// send the next move back to the descent) in 4- to 64-entry nodes (split, merged and packed leaves).
    /// <see cref="RunMap{T}.TryExtendLastKey"/> must leave the map as <see cref="RunMap{T}.TryInsert"/> of the key does on
    /// a twin, or change nothing; <see cref="RunMap{T}.TryRemoveLastKey"/> as <see cref="RunMap{T}.Remove"/>.</summary>
    [Theory]
    [InlineData(4, 0x5eed_e301UL)]
    [InlineData(8, 0x5eed_e302UL)]
    [InlineData(64, 0x5eed_e303UL)]
    public void EdgeMoves_EndAsTryInsertAndRemoveOrChangeNothing(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<FrameCount>(capacity);
        var twin = new RunMap<FrameCount>(capacity);
        ulong keys = (ulong)Math.Min(capacity * 40, 640);
        // Runs of count 1 with gaps, as pinned neighbours; a hot key's run ends right before it.
        for (ulong k = 0; k < keys; k += 3 + (rng.Next() % 5))
        {
            ulong last = Math.Min(keys - 1, k + (rng.Next() % 5));
            map.Set(k, last, new FrameCount(1));
            twin.Set(k, last, new FrameCount(1));
            k = last;
        }
        // The keys right after four runs (each followed by a gap of at least two keys): each one's pin extends its run,
        // each one's unpin shrinks it back.
        Run<FrameCount>[] runs = [.. twin.All()];
        ulong[] hot = [.. Enumerable.Range(1, 2).Select(i => runs[i * runs.Length / 3].Last + 1)];
        ulong lastHot = hot[0];
        int extended = 0;
        int missed = 0;
        int trimmed = 0;
        int declined = 0;
        for (int step = 0; step < 12000; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            // Mostly the key moved last (the pair's pin after its unpin takes the remembered run), else the other one.
            ulong key = rng.Next() % 16 == 0 ? hot[rng.Next() % (ulong)hot.Length] : lastHot;
            lastHot = key;
            switch (rng.Next() % 8)
            {
                case 0:
                    {
                        // A general change: now and then the run before a hot key gets another count (which the key
                        // then cannot continue) or count 1 back; else anywhere, another count, a cut or a fresh run.
                        if (rng.Next() % 4 != 0)
                        {
                            goto default;
                        }
                        if (rng.Next() % 2 == 0 && twin.TryGet(key - 1, out Run<FrameCount> before))
                        {
                            var v = new FrameCount(rng.Next() % 4 == 0 ? 2UL : 1UL);
                            map.Set(before.Start, key - 1, v);
                            twin.Set(before.Start, key - 1, v);
                            break;
                        }
                        key = rng.Next() % keys;
                        ulong last = Math.Min(keys - 1, key + (rng.Next() % 4));
                        if (rng.Next() % 2 == 0)
                        {
                            map.Remove(key, last);
                            twin.Remove(key, last);
                        }
                        else
                        {
                            var v = new FrameCount(1 + (rng.Next() % 3));
                            map.Set(key, last, v);
                            twin.Set(key, last, v);
                        }
                        break;
                    }
                case 1:
                case 2:
                case 3:
                    {
                        // A pin of a key with no count: the lane, else TryInsert (as FrameCountMap.AddOne).
                        if (twin.TryGetValue(key, out _))
                        {
                            // Pinned already: its unpin when it ends its run with one count, as the pair's UNMAP.
                            goto case 4;
                        }
                        var one = new FrameCount(rng.Next() % 8 == 0 ? 2UL : 1UL);
                        Run<FrameCount>[] before = [.. map.All()];
                        bool got = map.TryExtendLastKey(key, one);
                        bool joins = twin.TryGet(key - 1, out Run<FrameCount> prev) && prev.Value.Equals(one) &&
                            !(twin.TryGet(key + 1, out Run<FrameCount> next) && next.Value.Equals(one));
                        Assert.True(!got || joins, $"{where}: extended to {key}, which continues no run of {one.Count}");
                        if (!got)
                        {
                            declined++;
                            missed += joins ? 1 : 0;
                            Run<FrameCount>[] after = [.. map.All()];
                            Assert.Equal(before, after);
                            Assert.True(map.TryInsert(key, key, one), $"{where}: insert {key} after the lane declined");
                        }
                        extended += got ? 1 : 0;
                        Assert.True(twin.TryInsert(key, key, one), $"{where}: twin insert {key}");
                        break;
                    }
                case 4:
                default:
                    {
                        if (!twin.TryGetValue(key, out FrameCount held))
                        {
                            break;
                        }
                        if (held.Count != 1)
                        {
                            // One pin of several goes (the general path, as Adjust's), so the key moves again later.
                            map.Set(key, key, new FrameCount(held.Count - 1));
                            twin.Set(key, key, new FrameCount(held.Count - 1));
                            break;
                        }
                        if (map.TryRemoveLastKey(key, new FrameCount(1)))
                        {
                            trimmed++;
                        }
                        else
                        {
                            declined++;
                            map.Remove(key, key);
                        }
                        twin.Remove(key, key);
                        break;
                    }
            }
            map.AssertValid();
            Assert.Equal(twin.Count, map.Count);
            Assert.Equal([.. twin.All()], [.. map.All()]);
        }
        Assert.True(extended > 200 && trimmed > 1000 && declined > 100 && missed > 10, $"extended {extended} (missed {missed}), trimmed {trimmed}, declined {declined}: every case must run");
    }

    /// <summary>The removal of the run the last one-run insert put in takes that slot without a search while the map is
    /// unchanged since; any other change in between (a general call, another one-run insert or removal) must send it
    /// back to the search. One-run inserts, each followed mostly by the removal of that run, sometimes of another run
    /// of the same leaf or after a general change, against a twin that takes the general calls.</summary>
    [Theory]
    [InlineData(4, 0x5eed_e101UL)]
    [InlineData(16, 0x5eed_e102UL)]
    [InlineData(64, 0x5eed_e103UL)]
    public void RemoveAfterInsertOne_TakesTheSlotOnlyWhileUnchanged(int capacity, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new RunMap<Word>(capacity);
        var twin = new RunMap<Word>(capacity);
        ulong keys = (ulong)(capacity * 30);
        for (ulong k = 0; k < keys; k += 2)
        {
            map.Insert(k, k, new Word(k << 20));
            twin.Insert(k, k, new Word(k << 20));
        }
        int pairs = 0;
        for (int step = 0; step < 6000; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            ulong start = rng.Next() % keys;
            var value = new Word(start << 20);
            bool inserted = twin.TryInsert(start, start, value);
            Assert.True(inserted == map.TryInsertOne(start, start, value), $"{where}: insert one at {start}");
            switch (rng.Next() % 6)
            {
                case 0:
                    {
                        ulong s = (rng.Next() % keys) | 1;
                        map.Set(s, s, new Word(7));
                        twin.Set(s, s, new Word(7));
                        break;
                    }
                case 1:
                    {
                        // Another run first: the slot no longer holds the inserted run's position.
                        if (twin.TryGetAtOrAfter(start == 0 ? 0 : start - 1, out Run<Word> other) && other.Start != start)
                        {
                            Assert.Equal(twin.TryRemoveExact(other.Start, other.Last, out _), map.TryRemoveExactOne(other.Start, other.Last, out _));
                        }
                        break;
                    }
            }
            if (twin.TryGet(start, out Run<Word> r))
            {
                bool expected = twin.TryRemoveExact(r.Start, r.Last, out Word ev);
                bool got = map.TryRemoveExactOne(r.Start, r.Last, out Word gv);
                Assert.True(expected == got && ev.Equals(gv), $"{where}: remove [{r.Start}, {r.Last}]");
                pairs += inserted ? 1 : 0;
            }
            map.AssertValid();
            Assert.Equal(twin.Count, map.Count);
            if (step % 8 == 0)
            {
                Assert.Equal([.. twin.All()], [.. map.All()]);
            }
        }
        Assert.Equal([.. twin.All()], [.. map.All()]);
        Assert.True(pairs > 1000, $"insert-then-remove pairs {pairs}");
    }

    /// <summary><see cref="FrameFlagMap.SetUnlessAllSet"/> remembers the frame it marked last and skips it until a
    /// <see cref="FrameFlagMap.Clear"/>: marks of one frame and of ranges, repeated, with clears of that frame, of
    /// ranges around it and elsewhere between, must leave the flags of a per-frame array.</summary>
    [Theory]
    [InlineData(0x5eed_e201UL)]
    [InlineData(0x5eed_e202UL)]
    public void SetUnlessAllSet_AfterClears_MatchesAPerFrameArray(ulong seed)
    {
        const ulong Base = 0x40000;
        const ulong Span = 3 * FrameFlagMap.WindowFrames;
        var rng = new SplitMix64(seed);
        var map = new FrameFlagMap();
        var oracle = new bool[Span];
        ulong hot = rng.Next() % Span;
        int skipsPossible = 0;
        for (int step = 0; step < 20000; step++)
        {
            ulong f = rng.Next() % 3 == 0 ? rng.Next() % Span : hot;
            switch (rng.Next() % 5)
            {
                case 0:
                    {
                        ulong last = Math.Min(Span - 1, f + (rng.Next() % 40));
                        ulong first = f >= 3 ? f - (rng.Next() % 3) : f;
                        map.Clear(Base + first, Base + last);
                        Array.Fill(oracle, false, (int)first, (int)(last - first + 1));
                        break;
                    }
                case 1:
                    {
                        ulong last = Math.Min(Span - 1, f + (rng.Next() % 300));
                        map.SetUnlessAllSet(Base + f, Base + last);
                        Array.Fill(oracle, true, (int)f, (int)(last - f + 1));
                        break;
                    }
                default:
                    skipsPossible += oracle[f] ? 1 : 0;
                    map.SetUnlessAllSet(Base + f, Base + f);
                    oracle[f] = true;
                    break;
            }
            if (step % 16 == 0 || f == hot)
            {
                Assert.True(oracle[hot] == map.Contains(Base + hot), $"seed 0x{seed:x} step {step}: frame {hot}");
            }
        }
        for (ulong i = 0; i < Span; i++)
        {
            Assert.True(oracle[i] == map.Contains(Base + i), $"seed 0x{seed:x}: frame {i}");
        }
        map.AssertValid();
        Assert.True(skipsPossible > 1000, $"marks of a frame already set {skipsPossible}");
    }
}
