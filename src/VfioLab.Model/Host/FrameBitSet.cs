using System.Numerics;
using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>
/// A set of host frames gathered as bits, 64 words per aligned window of <see cref="FrameCountMap.WindowFrames"/>
/// frames, and read back window by window in frame order: what a large UNMAP unpins, sorted by frame as it is collected
/// (<c>DmaPinning.UnmapUnpinLocked</c>, <see cref="PhysicalMemory.UnpinFrameBits"/>). A frame named twice is refused,
/// so the caller keeps the second as a piece of its own (one pin each).
/// </summary>
/// <remarks>
/// Why (issue 16; docs/benchmarks.md, 2026-12-08 "onepage9"): on memory shattered into 1-page runs the UNMAP's pieces
/// come in IOVA order, one random frame each, and their pin drops were one random <c>ushort</c> of the pin map per frame
/// (6 MiB of counts at 4 GiB in 12 GiB; 37 MB at 64 GiB in 72), the count's cache line (and page) fetched per frame.
/// A bit set here is a write into 512 B per window (384 KiB at 4 GiB in 12 GiB, inside the L2); the drops then walk each
/// window's 8 KiB of counts once, upward, ~10 frames per line of counts at 4 GiB. A comparison or radix sort of the
/// pieces was measured at ~27 ns per page (the note on <c>DmaPinning.UnpinSortedLocked</c>); this sort is the bit.
/// Measured (CPU of the UNMAP, alternating with the build before, load 7-19): 4 GiB on 1-page runs 0.049-0.070 → 0.027-0.048
/// s (seven alternations); 64 GiB on 1-page runs 1.33-2.11 → 0.48-1.09 s (four); 64 GiB on 16-page runs 0.142-0.159 →
/// 0.088-0.103 s, its UNMAP peak heap 5.5 → 3.2 B/page (the sparse windows' runs come out of the bits sorted and joined:
/// no list of pieces to hold and sort).
/// Kept by its owner between unmaps; <see cref="Release"/> lets go of a large one's arrays. Not thread-safe: the container's
/// lock protects it.
/// </remarks>
internal sealed class FrameBitSet
{
    private const int WindowShift = FrameCountMap.WindowShift;
    private const int Words = (int)(FrameCountMap.WindowFrames / 64);

    // Windows whose arrays a set keeps between unmaps (536 B each, 536 KiB: every window of a 16 GiB host); a set that
    // needed more lets go of them all after use (a 64 GiB unmap's 2.4 MiB), as DmaPinning does with its list of pieces.
    private const int KeepWindows = 1024;

    // Bits per window number (null: no frame of it taken since the window was last read), and the windows taken, in
    // the order first taken.
    private ulong[]?[] _bits = [];
    private int[] _taken = new int[16];
    private int _takenCount;
    // Zeroed arrays of windows read, for the next windows taken; and how many arrays the set owns.
    private readonly Stack<ulong[]> _spare = new();
    private int _allocated;

    /// <summary>Whether no frame is held.</summary>
    public bool IsEmpty => _takenCount == 0;

    /// <summary>Adds the <paramref name="count"/> frames from <paramref name="first"/> when they lie in one 64-frame
    /// word and none is held yet; otherwise changes nothing and answers false (the caller keeps the piece itself).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool TryAdd(ulong first, ulong count)
    {
        int bit = (int)(first & 63);
        ulong window = first >> WindowShift;
        if ((ulong)bit + count > 64 || count == 0 || window >= (ulong)_bits.Length || _bits[window] is not { } words)
        {
            return TryAddSlow(first, count);
        }
        ulong mask = (count == 64 ? ulong.MaxValue : (1UL << (int)count) - 1) << bit;
        ref ulong word = ref words[(int)(first >> 6) & (Words - 1)];
        if ((word & mask) != 0)
        {
            return false;
        }
        word |= mask;
        return true;
    }

    private bool TryAddSlow(ulong first, ulong count)
    {
        int bit = (int)(first & 63);
        if ((ulong)bit + count > 64 || count == 0 || (first >> WindowShift) > int.MaxValue / 2)
        {
            return false;
        }
        int window = (int)(first >> WindowShift);
        if (window >= _bits.Length)
        {
            Array.Resize(ref _bits, Math.Max(window + 1, 2 * _bits.Length));
        }
        if (_bits[window] is null)
        {
            if (!_spare.TryPop(out ulong[]? words))
            {
                words = new ulong[Words];
                _allocated++;
            }
            _bits[window] = words;
            if (_takenCount == _taken.Length)
            {
                Array.Resize(ref _taken, 2 * _taken.Length);
            }
            _taken[_takenCount++] = window;
        }
        return TryAdd(first, count);
    }

    /// <summary>The windows held, in ascending order, each with its 64 words (bit <c>b</c> of word <c>w</c> is frame
    /// <c>window * 4096 + 64 * w + b</c>). The caller reads them, then calls <see cref="Release"/>.</summary>
    public Enumerator GetEnumerator()
    {
        Array.Sort(_taken, 0, _takenCount);
        return new Enumerator(this);
    }

    /// <summary>Forgets the windows held (read or not). Their arrays are
    /// kept for the next unmap unless the set grew past <see cref="KeepWindows"/>.</summary>
    public void Release()
    {
        bool keep = _allocated <= KeepWindows;
        for (int i = 0; i < _takenCount; i++)
        {
            int w = _taken[i];
            ulong[] words = _bits[w]!;
            _bits[w] = null;
            if (keep)
            {
                // Cleared here rather than by each reader, so a reader that throws leaves no frame behind (512 B a
                // window: ~20 us for a 4 GiB unmap's 768 windows).
                Array.Clear(words);
                _spare.Push(words);
            }
        }
        _takenCount = 0;
        if (!keep)
        {
            _bits = [];
            _taken = new int[16];
            _spare.Clear();
            _allocated = 0;
        }
    }

    /// <summary>Moves every frame held into <paramref name="pieces"/> as runs (adjacent frames of a word joined) and
    /// empties the set: where the caller cannot take the bits after all.</summary>
    public void DrainTo(List<PfnRun> pieces)
    {
        foreach ((ulong window, ulong[] words) in this)
        {
            ulong ws = window << WindowShift;
            for (int w = 0; w < Words; w++)
            {
                ulong word = words[w];
                while (TakeLowestRun(ref word, out int b, out int len))
                {
                    pieces.Add(new PfnRun(new Pfn(ws + (ulong)(64 * w + b)), (ulong)len));
                }
            }
        }
        Release();
    }

    /// <summary>Takes the lowest run of set bits out of <paramref name="word"/>: its first bit and length, and the word
    /// without it; false when the word is empty.</summary>
    public static bool TakeLowestRun(ref ulong word, out int bit, out int length)
    {
        if (word == 0)
        {
            bit = 0;
            length = 0;
            return false;
        }
        bit = BitOperations.TrailingZeroCount(word);
        length = BitOperations.TrailingZeroCount(~(word >> bit));
        word = bit + length >= 64 ? 0 : word & ~(((1UL << length) - 1) << bit);
        return true;
    }

    /// <summary>The windows held, ascending.</summary>
    public struct Enumerator(FrameBitSet set)
    {
        private int _i = -1;

        public readonly (ulong Window, ulong[] Words) Current
        {
            get
            {
                int w = set._taken[_i];
                return ((ulong)w, set._bits[w]!);
            }
        }

        public bool MoveNext() => ++_i < set._takenCount;
    }
}
