using System.Numerics;

namespace VfioLab.Host;

/// <summary>
/// Sorts runs of frames by their first frame: the runs of a GUP refill's or an unmap's batch that land in windows a
/// <see cref="FrameCountMap"/> still holds as runs, so its run map is updated in address order in one pass (issue 16).
/// Dense windows take frames in any order and are never sorted for.
/// </summary>
/// <remarks>
/// A least-significant-digit radix sort on 11-bit digits of the frame number, as many digits as the largest frame
/// needs (two for 8 M frames, 32 GiB of 4 KiB pages): on a million 1-page runs the comparison sorts it replaced
/// (<c>Array.Sort</c> of primitive keys, <c>Span.Sort</c> with a comparer) were about a sixth of a 4 GiB MAP+UNMAP's
/// CPU time; this is a few passes over the runs. Stable; the scratch array is rented. Stateless.
/// </remarks>
internal static class FrameRunSort
{
    private const int DigitBits = 11;
    private const int Buckets = 1 << DigitBits;

    // Below this an insertion sort (stable too) is cheaper than clearing and summing the buckets.
    private const int RadixFrom = 256;

    /// <summary><see cref="Sort"/>, unless the runs' first frames already strictly rise (a refill of memory that is
    /// still in order, the common case on contiguous memory: one pass, nothing moved).</summary>
    public static void SortUnlessOrdered(Span<PfnRun> runs)
    {
        for (int i = 1; i < runs.Length; i++)
        {
            if (runs[i - 1].First.Value >= runs[i].First.Value)
            {
                Sort(runs);
                return;
            }
        }
    }

    /// <summary>Sorts <paramref name="runs"/> in place by <see cref="PfnRun.First"/>.</summary>
    public static void Sort(Span<PfnRun> runs)
    {
        int n = runs.Length;
        if (n < 2)
        {
            return;
        }
        if (n < RadixFrom)
        {
            for (int i = 1; i < n; i++)
            {
                PfnRun r = runs[i];
                int j = i - 1;
                while (j >= 0 && runs[j].First.Value > r.First.Value)
                {
                    runs[j + 1] = runs[j];
                    j--;
                }
                runs[j + 1] = r;
            }
            return;
        }
        ulong all = 0;
        foreach (PfnRun r in runs)
        {
            all |= r.First.Value;
        }
        int bits = 64 - BitOperations.LeadingZeroCount(all);
        PfnRun[] rented = System.Buffers.ArrayPool<PfnRun>.Shared.Rent(n);
        Span<int> offsets = stackalloc int[Buckets];
        Span<PfnRun> src = runs;
        Span<PfnRun> dst = rented.AsSpan(0, n);
        bool inScratch = false;
        for (int shift = 0; shift < bits; shift += DigitBits)
        {
            offsets.Clear();
            foreach (PfnRun r in src)
            {
                offsets[(int)((r.First.Value >> shift) & (Buckets - 1))]++;
            }
            int sum = 0;
            for (int d = 0; d < Buckets; d++)
            {
                int c = offsets[d];
                offsets[d] = sum;
                sum += c;
            }
            foreach (PfnRun r in src)
            {
                dst[offsets[(int)((r.First.Value >> shift) & (Buckets - 1))]++] = r;
            }
            Span<PfnRun> t = src;
            src = dst;
            dst = t;
            inScratch = !inScratch;
        }
        if (inScratch)
        {
            src.CopyTo(runs);
        }
        System.Buffers.ArrayPool<PfnRun>.Shared.Return(rented);
    }
}
