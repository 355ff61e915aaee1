using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// <see cref="PhysicalMemory"/> on memory shattered enough that its frame maps (free set, references, pins, dirty bits)
/// go dense per window: pins and unpins in random order, dirtying unpins, frames released and taken again, checked
/// frame by frame against a per-frame oracle and run by run through the inspection view.
/// </summary>
public class PhysicalMemoryShatteredTests
{
    [Theory]
    [InlineData(0x5ca7_0001UL, 1UL)]
    [InlineData(0x5ca7_0002UL, 2UL)]
    [InlineData(0x5ca7_0003UL, 4UL)]
    public void PinsUnpinsReleaseAndDirtyBits_MatchAPerFrameOracle(ulong seed, ulong runPages)
    {
        // 64 MiB: 16 Ki frames, four windows of FrameCountMap.WindowFrames.
        var mem = new PhysicalMemory(12, 64UL << 20, FrameLayout.ScatteredRuns(runPages, seed));
        var rng = new SplitMix64(seed);
        var owned = new List<ulong>();
        var refs = new Dictionary<ulong, ulong>();
        while (owned.Count < 12_000 && mem.TryAllocateRun(1, out PfnRun run))
        {
            owned.Add(run.First.Value);
            refs[run.First.Value] = 1;
        }
        Assert.Equal(mem.FrameCount - (ulong)owned.Count, mem.FreeFrameCount);
        var pins = new Dictionary<ulong, ulong>();
        var dirty = new HashSet<ulong>();
        var everDense = (Free: false, Refs: false, Pins: false, Dirty: false);
        // An unpin in the oracle: the dirty bit set, and cleared again if the frame is freed (no pin, no owner left).
        void Unpinned(ulong f, bool markDirty)
        {
            if (--pins[f] == 0)
            {
                pins.Remove(f);
            }
            if (markDirty)
            {
                dirty.Add(f);
            }
            if (!pins.ContainsKey(f) && !refs.ContainsKey(f))
            {
                dirty.Remove(f);
            }
        }

        for (int round = 0; round < 12; round++)
        {
            string where = $"seed 0x{seed:x} round {round}";
            // Pin a random half of the owned frames, in random order, some twice in the same batch.
            List<PfnRun> pin = owned.Where(_ => rng.Next() % 2 == 0).Select(f => new PfnRun(new Pfn(f), 1)).ToList();
            if (pin.Count > 3)
            {
                pin.Add(pin[1]);
            }
            Shuffle(pin, ref rng);
            mem.PinRuns([.. pin]);
            foreach (PfnRun r in pin)
            {
                pins[r.First.Value] = pins.GetValueOrDefault(r.First.Value) + 1;
            }
            AssertMatches(mem, pins, dirty, refs, where + " pin");
            (int free, int owners, int pinned0, int dirty0) = mem.DenseWindowsForTests();
            everDense = (everDense.Free | free > 0, everDense.Refs | owners > 0, everDense.Pins | pinned0 > 0, everDense.Dirty | dirty0 > 0);
            // Unpin most pinned frames, in random order, dirtying every other round.
            bool markDirty = round % 2 == 0;
            List<PfnRun> unpin = pins.Keys.Where(_ => rng.Next() % 4 != 0).Select(f => new PfnRun(new Pfn(f), 1)).ToList();
            Shuffle(unpin, ref rng);
            mem.UnpinRuns([.. unpin], markDirty);
            foreach (PfnRun r in unpin)
            {
                Unpinned(r.First.Value, markDirty);
            }
            AssertMatches(mem, pins, dirty, refs, where + " unpin");
            // Release a few owners' references: frames with no pin left are freed (and lose their dirty bit).
            foreach (ulong f in owned.Where(_ => rng.Next() % 10 == 0).ToList())
            {
                mem.DropRefs(new PfnRun(new Pfn(f), 1));
                refs.Remove(f);
                owned.Remove(f);
                if (!pins.ContainsKey(f))
                {
                    dirty.Remove(f);
                }
            }
            AssertMatches(mem, pins, dirty, refs, where + " drop");
            // Unpinning a frame with no pin throws after applying the rest; the counters stay consistent.
            ulong unpinned = owned.First(f => !pins.ContainsKey(f));
            ulong pinned = pins.Keys.First();
            var ex = Assert.Throws<InvalidOperationException>(() =>
                mem.UnpinRuns([new PfnRun(new Pfn(pinned), 1), new PfnRun(new Pfn(unpinned), 1)], markDirty: false));
            Assert.Contains($"0x{unpinned:x}", ex.Message, StringComparison.Ordinal);
            Unpinned(pinned, markDirty: false);
            AssertMatches(mem, pins, dirty, refs, where + " bad unpin");
            // Take frames again: they come from the free set.
            for (int i = 0; i < 200 && mem.TryAllocateRun(1 + (rng.Next() % 3), out PfnRun again); i++)
            {
                for (ulong f = again.First.Value; f <= again.Last.Value; f++)
                {
                    Assert.False(refs.ContainsKey(f) || pins.ContainsKey(f), $"{where}: frame 0x{f:x} allocated twice");
                    Assert.False(mem.IsDirty(new Pfn(f)), $"{where}: a freshly allocated frame 0x{f:x} is dirty");
                    refs[f] = 1;
                    owned.Add(f);
                }
            }
            AssertMatches(mem, pins, dirty, refs, where + " allocate");
        }
        if (runPages <= 2)
        {
            // ~400-900 runs per window: past the dense threshold (4-page runs, ~190 per window, stay runs).
            Assert.True(everDense.Free && everDense.Refs && everDense.Pins && everDense.Dirty, $"dense windows seen: {everDense}");
        }
        // Unpin everything left, then drop every owner: all RAM is free again.
        mem.UnpinRuns([.. pins.SelectMany(p => Enumerable.Repeat(new PfnRun(new Pfn(p.Key), 1), (int)p.Value))], markDirty: true);
        foreach (ulong f in owned)
        {
            mem.DropRefs(new PfnRun(new Pfn(f), 1));
        }
        Assert.Equal(0UL, mem.TotalPins);
        Assert.Equal(0UL, mem.PinnedFrameCount);
        Assert.Equal(mem.FrameCount, mem.FreeFrameCount);
        Assert.True(mem.TryAllocateHuge(512, out Pfn huge), "a 2 MiB block after everything was freed");
        Assert.Equal(0UL, huge.Value);
        // Freed whole, every window is back to runs: a free window full again is one run, and empty ones are dropped.
        Assert.Equal((0, 0, 0, 0), mem.DenseWindowsForTests());
    }

    private static void Shuffle(List<PfnRun> list, ref SplitMix64 rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = (int)(rng.Next() % (ulong)(i + 1));
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    private static void AssertMatches(PhysicalMemory mem, Dictionary<ulong, ulong> pins, HashSet<ulong> dirty,
        Dictionary<ulong, ulong> refs, string where)
    {
        ulong pinnedFrames = 0;
        ulong totalPins = 0;
        var expected = new List<(ulong, ulong, ulong)>();
        for (ulong f = 0; f < mem.FrameCount; f++)
        {
            ulong p = pins.GetValueOrDefault(f);
            ulong r = refs.GetValueOrDefault(f);
            var pfn = new Pfn(f);
            if (mem.PinCount(pfn) != p || mem.RefCount(pfn) != r || mem.IsDirty(pfn) != dirty.Contains(f))
            {
                Assert.Fail($"{where}: frame 0x{f:x} pins {mem.PinCount(pfn)}/{p} refs {mem.RefCount(pfn)}/{r} dirty {mem.IsDirty(pfn)}");
            }
            pinnedFrames += p != 0 ? 1UL : 0;
            totalPins += p;
            if (p == 0)
            {
                continue;
            }
            if (expected.Count > 0 && expected[^1].Item2 == f - 1 && expected[^1].Item3 == p)
            {
                expected[^1] = (expected[^1].Item1, f, p);
            }
            else
            {
                expected.Add((f, f, p));
            }
        }
        Assert.True(pinnedFrames == mem.PinnedFrameCount, $"{where}: pinned frames {mem.PinnedFrameCount}, expected {pinnedFrames}");
        Assert.True(totalPins == mem.TotalPins, $"{where}: total pins {mem.TotalPins}, expected {totalPins}");
        ulong free = mem.FrameCount - (ulong)refs.Keys.Union(pins.Keys).Count();
        Assert.True(free == mem.FreeFrameCount, $"{where}: free frames {mem.FreeFrameCount}, expected {free}");
        var actual = new List<(ulong, ulong, ulong)>();
        mem.VisitPinRuns((first, last, count) => actual.Add((first, last, count)));
        Assert.Equal(expected, actual);
    }
}
