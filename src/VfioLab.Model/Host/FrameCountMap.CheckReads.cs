using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VfioLab.Host;

// A read for the invariant checker (Checks/InvariantChecker.InPlace.cs, issue 16): whether every frame a bitmap marks
// holds a count, read window by window in frame order. The check after a MAP of 64 GiB on 1-page runs tested its 16.8 M
// frame runs one lookup each, in the scattered order the runs come in: a cache miss into the dense counts per run,
// ~48 ns a run, ~0.8 s of the 64 GiB scenario. Marked in a bitmap first (which the check keeps anyway for
// host-page-charged-once), the same frames are read here in order, 64 at a time against the dense window's counts.
// Read-only; the caller holds the lock guarding the map (PhysicalMemory's).
internal sealed partial class FrameCountMap
{
    /// <summary>Whether every frame whose bit is set in <paramref name="bits"/> (bit <c>i</c> of word <c>w</c> is frame
    /// <c>64w + i</c>, from frame 0) has a non-zero count. Dense windows are compared 64 frames to a word; a sparse
    /// window's marked stretches are looked up as runs (<see cref="Covers"/>).</summary>
    public bool NoneZeroWhereMarked(ReadOnlySpan<ulong> bits)
    {
        const int WordsPerWindow = (int)(WindowFrames / 64);
        for (int start = 0; start < bits.Length; start += WordsPerWindow)
        {
            ReadOnlySpan<ulong> words = bits.Slice(start, Math.Min(WordsPerWindow, bits.Length - start));
            if (!words.ContainsAnyExcept(0UL))
            {
                continue;
            }
            ulong window = (ulong)start / WordsPerWindow;
            if (DenseAt(window) is { } counts)
            {
                for (int i = 0; i < words.Length; i++)
                {
                    if (words[i] != 0 && (ZeroMask(counts, i * 64) & words[i]) != 0)
                    {
                        return false;
                    }
                }
            }
            else if (!MarkedStretchesCovered(words, window << WindowShift))
            {
                return false;
            }
        }
        return true;
    }

    // Bit i set where counts[at + i] is 0, for i in 0..63 (four 16-lane compares; a dense window is 4096 counts, so the
    // 64 from a multiple of 64 are always there).
    private static ulong ZeroMask(ushort[] counts, int at)
    {
        ReadOnlySpan<ushort> c = counts.AsSpan(at, 64);
        ref ushort first = ref MemoryMarshal.GetReference(c);
        ulong m0 = Vector256.Equals(Vector256.LoadUnsafe(ref first, 0), Vector256<ushort>.Zero).ExtractMostSignificantBits();
        ulong m1 = Vector256.Equals(Vector256.LoadUnsafe(ref first, 16), Vector256<ushort>.Zero).ExtractMostSignificantBits();
        ulong m2 = Vector256.Equals(Vector256.LoadUnsafe(ref first, 32), Vector256<ushort>.Zero).ExtractMostSignificantBits();
        ulong m3 = Vector256.Equals(Vector256.LoadUnsafe(ref first, 48), Vector256<ushort>.Zero).ExtractMostSignificantBits();
        return m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
    }

    // A sparse window: each maximal stretch of set bits (frames from `base`) must be covered by counts.
    private bool MarkedStretchesCovered(ReadOnlySpan<ulong> words, ulong frameBase)
    {
        int bitCount = words.Length * 64;
        int pos = 0;
        while (pos < bitCount)
        {
            int first = NextBit(words, pos, set: true);
            if (first >= bitCount)
            {
                return true;
            }
            int end = NextBit(words, first, set: false);
            if (!Covers(frameBase + (ulong)first, frameBase + (ulong)end - 1))
            {
                return false;
            }
            pos = end;
        }
        return true;
    }

    // The first bit at or after `pos` that is set (or clear), or the span's bit count.
    private static int NextBit(ReadOnlySpan<ulong> words, int pos, bool set)
    {
        int w = pos >> 6;
        ulong word = (set ? words[w] : ~words[w]) & (ulong.MaxValue << (pos & 63));
        while (word == 0)
        {
            if (++w == words.Length)
            {
                return words.Length * 64;
            }
            word = set ? words[w] : ~words[w];
        }
        return (w * 64) + BitOperations.TrailingZeroCount(word);
    }
}
