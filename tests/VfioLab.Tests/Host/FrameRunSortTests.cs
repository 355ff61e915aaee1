using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>FrameRunSort: runs of frames in address order, stably, below and above the radix threshold and for
/// frame numbers of one to three digits.</summary>
public sealed class FrameRunSortTests
{
    [Theory]
    [InlineData(0, 1UL << 20)]
    [InlineData(1, 1UL << 20)]
    [InlineData(200, 1UL << 20)]
    [InlineData(5000, 1000)]
    [InlineData(5000, 1UL << 22)]
    [InlineData(70000, 1UL << 40)]
    public void Sort_RandomRuns_EqualsAStableComparisonSort(int count, ulong frames)
    {
        var rng = new Random(count);
        var runs = new PfnRun[count];
        for (int i = 0; i < count; i++)
        {
            // The count tells equal frames apart, so stability is checked too.
            runs[i] = new PfnRun(new Pfn((ulong)rng.NextInt64((long)frames)), (ulong)i + 1);
        }
        PfnRun[] expected = [.. runs.OrderBy(r => r.First.Value)];

        FrameRunSort.Sort(runs);

        Assert.Equal(expected, runs);
    }
}
