using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>
/// <see cref="FrameFlagMap"/> (a page flag as runs, or as a bitmap per fragmented window) against a per-frame array:
/// random sets, clears and batches of marks (1-frame runs, duplicates, overlapping and window-crossing runs) over five
/// windows, windows going dense both through the pin map's hint and through their own edits, and back (emptied, or
/// filled); after each step every frame, random ranges' <see cref="FrameFlagMap.AllSet"/> and the maximal runs must
/// agree with the array.
/// </summary>
public class FrameFlagMapTests
{
    private const ulong Window = FrameFlagMap.WindowFrames;

    // The frames looked at: windows 3 to 7 (not from frame 0, so the directory's indexing is exercised).
    private const ulong Base = 3 * Window;
    private const ulong Span = 5 * Window;

    [Theory]
    [InlineData(0xf1a9_0001UL)]
    [InlineData(0xf1a9_0002UL)]
    [InlineData(0xf1a9_0003UL)]
    public void RandomUpdates_MatchAPerFrameArray(ulong seed)
    {
        var rng = new SplitMix64(seed);
        var map = new FrameFlagMap();
        var oracle = new bool[Span];
        // The pin map's hint: windows 4 and 6 dense there.
        FrameCountMap pinsLike = DenseIn(4, 6);
        bool sawDense = false;
        bool sawDropped = false;
        bool sawFilled = false;
        for (int step = 0; step < 400; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            int denseBefore = map.DenseWindowCount;
            switch (rng.Next() % 6)
            {
                case 0:
                case 1:
                    {
                        // A batch of marks: mostly 1-frame runs, some named twice, some 2-40 frames long, one across windows.
                        int n = 1 + (int)(rng.Next() % 300);
                        var runs = new PfnRun[n];
                        for (int i = 0; i < n; i++)
                        {
                            ulong f = rng.Next() % Span;
                            ulong count = rng.Next() % 8 == 0 ? 2 + (rng.Next() % 39) : 1;
                            count = Math.Min(count, Span - f);
                            runs[i] = i > 0 && rng.Next() % 16 == 0 ? runs[i - 1] : new PfnRun(new Pfn(Base + f), count);
                        }
                        if (rng.Next() % 4 == 0)
                        {
                            ulong edge = ((1 + (rng.Next() % 4)) * Window) - 3;
                            runs[0] = new PfnRun(new Pfn(Base + edge), 7);
                        }
                        map.MarkRuns(runs, rng.Next() % 4 == 0 ? null : pinsLike);
                        foreach (PfnRun r in runs)
                        {
                            Fill(oracle, r.First.Value - Base, r.Last.Value - Base, true);
                        }
                        break;
                    }
                case 2:
                case 3:
                    {
                        // One short set or clear (a 4 KiB unpin, a freed frame), now and then a long one.
                        ulong a = rng.Next() % Span;
                        ulong len = rng.Next() % 10 == 0 ? 1 + (rng.Next() % (2 * Window)) : 1 + (rng.Next() % 3);
                        ulong b = Math.Min(Span - 1, a + len - 1);
                        bool set = rng.Next() % 3 != 0;
                        if (set)
                        {
                            map.Set(Base + a, Base + b);
                        }
                        else
                        {
                            map.Clear(Base + a, Base + b);
                        }
                        Fill(oracle, a, b, set);
                        break;
                    }
                case 4:
                    {
                        // A whole window filled by short sets (all frames of a window dirty: back to one run), or emptied.
                        ulong w = rng.Next() % 5;
                        bool set = rng.Next() % 2 == 0;
                        for (ulong f = 0; f < Window; f += 512)
                        {
                            if (set)
                            {
                                map.Set(Base + (w * Window) + f, Base + (w * Window) + f + 511);
                            }
                            else
                            {
                                map.Clear(Base + (w * Window) + f, Base + (w * Window) + f + 511);
                            }
                        }
                        Fill(oracle, w * Window, ((w + 1) * Window) - 1, set);
                        sawFilled |= set && denseBefore > 0;
                        break;
                    }
                default:
                    {
                        // Scattered short sets in one window: more than DenseAbove runs, so the window goes dense by its edits.
                        ulong w = rng.Next() % 5;
                        for (int i = 0; i < 3 * FrameFlagMap.DenseAbove; i++)
                        {
                            ulong f = (w * Window) + (rng.Next() % Window);
                            map.Set(Base + f, Base + f);
                            oracle[f] = true;
                        }
                        break;
                    }
            }
            sawDense |= map.DenseWindowCount > 0;
            sawDropped |= map.DenseWindowCount < denseBefore;
            map.AssertValid();
            AssertMatches(map, oracle, ref rng, where);
        }
        Assert.True(sawDense, "no window went dense: the bitmap form was not exercised");
        Assert.True(sawDropped, "no dense window went back: dropping and refilling were not exercised");
        Assert.True(sawFilled, "no window was filled while windows were dense");
    }

    [Fact]
    public void MarkRuns_WhereThePinsAreDense_GoesDenseAtOnce_AndAFullWindowBecomesOneRun()
    {
        var map = new FrameFlagMap();
        FrameCountMap pinsLike = DenseIn(2);
        // A run before window 2 and one after it, to be joined when the window fills.
        map.Set((2 * Window) - 10, (2 * Window) - 1);
        map.Set(3 * Window, (3 * Window) + 9);
        map.MarkRuns([new PfnRun(new Pfn((2 * Window) + 5), 1), new PfnRun(new Pfn((2 * Window) + 700), 1)], pinsLike);
        Assert.Equal(1, map.DenseWindowCount);
        Assert.True(map.Contains((2 * Window) + 5));
        Assert.False(map.Contains((2 * Window) + 6));
        Assert.False(map.AllSet((2 * Window) - 10, (2 * Window) + 5));
        // Without the hint the same marks stay runs.
        var plain = new FrameFlagMap();
        plain.MarkRuns([new PfnRun(new Pfn((2 * Window) + 5), 1), new PfnRun(new Pfn((2 * Window) + 700), 1)]);
        Assert.Equal(0, plain.DenseWindowCount);
        Assert.Equal([((2 * Window) + 5, (2 * Window) + 5), ((2 * Window) + 700, (2 * Window) + 700)], plain.All().ToArray());
        // Every frame of the window set: it goes back to runs, joined with its neighbours into one.
        map.MarkRuns([new PfnRun(new Pfn(2 * Window), Window)], pinsLike);
        map.AssertValid();
        Assert.Equal(0, map.DenseWindowCount);
        Assert.Equal([((2 * Window) - 10, (3 * Window) + 9)], map.All().ToArray());
        Assert.True(map.AllSet((2 * Window) - 10, (3 * Window) + 9));
        // Cleared to nothing: a dense window is dropped when its last bit goes.
        map.MarkRuns([new PfnRun(new Pfn((5 * Window) + 1), 1)], DenseIn(5));
        Assert.Equal(1, map.DenseWindowCount);
        map.Clear(5 * Window, (6 * Window) - 1);
        map.AssertValid();
        Assert.Equal(0, map.DenseWindowCount);
        Assert.False(map.Contains((5 * Window) + 1));
    }

    private static void Fill(bool[] oracle, ulong a, ulong b, bool value) => oracle.AsSpan((int)a, (int)(b - a + 1)).Fill(value);

    private static void AssertMatches(FrameFlagMap map, bool[] oracle, ref SplitMix64 rng, string where)
    {
        for (ulong f = 0; f < Span; f++)
        {
            if (map.Contains(Base + f) != oracle[f])
            {
                Assert.Fail($"{where}: frame 0x{Base + f:x} {map.Contains(Base + f)}, expected {oracle[f]}");
            }
        }
        Assert.False(map.Contains(Base - 1), where);
        Assert.False(map.Contains(Base + Span), where);
        var expected = new List<(ulong, ulong)>();
        for (ulong f = 0; f < Span; f++)
        {
            if (!oracle[f])
            {
                continue;
            }
            ulong e = f;
            while (e + 1 < Span && oracle[e + 1])
            {
                e++;
            }
            expected.Add((Base + f, Base + e));
            f = e;
        }
        Assert.Equal(expected, map.All().ToList());
        for (int i = 0; i < 50; i++)
        {
            ulong a = rng.Next() % Span;
            ulong b = Math.Min(Span - 1, a + (rng.Next() % (i % 5 == 0 ? 2 * Window : 70)));
            bool all = Array.IndexOf(oracle, false, (int)a, (int)(b - a + 1)) < 0;
            Assert.True(map.AllSet(Base + a, Base + b) == all, $"{where}: AllSet [0x{Base + a:x}, 0x{Base + b:x}] expected {all}");
        }
    }

    // A pin map whose given windows are dense.
    private static FrameCountMap DenseIn(params ulong[] windows)
    {
        var map = new FrameCountMap(4, 8, 2);
        foreach (ulong w in windows)
        {
            map.SetShattering((w * Window) + 1, (w * Window) + 1, 1);
        }
        Assert.Equal(windows.Length, map.DenseWindowCount);
        return map;
    }
}
