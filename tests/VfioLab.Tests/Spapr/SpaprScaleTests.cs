using VfioLab.Abi;
using VfioLab.Iommu;

namespace VfioLab.Tests.Spapr;

/// <summary>Cost follows extents: 64 GiB of hugetlb memory registered and mapped through a dynamic window is
/// a handful of runs, not a million TCE objects (counted, not timed).</summary>
public sealed class SpaprScaleTests
{
    [Fact]
    public void MapDma_64GiBHugetlbThroughDdw_IsAFewRuns()
    {
        const ulong size = 64 * SpaprTestHost.GiB;
        var h = new SpaprTestHost(memory: 80 * SpaprTestHost.GiB);
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapHuge(size, MmapFlags.Huge1GiB);
        Assert.Equal(0, h.Register(c, ram, size));
        Assert.Equal(0, h.Remove(c, 0));
        (long ret, ulong start) = h.Create(c, 16, 128 * SpaprTestHost.GiB, levels: 2);
        Assert.Equal(0, ret);
        Assert.Equal(0, h.Map(c, start, ram, size));
        Assert.Equal(size >> 16, h.ValidTces());   // a million 64 KiB TCEs
        TceTable table = h.Pe(SpaprTestHost.GpuGroup).Windows[0]!;
        Assert.True(table.Runs().Count <= 64, $"{table.Runs().Count} runs");
        h.AssertClean();
        Assert.Equal(0, h.Unmap(c, start, size).Ret);
        Assert.Equal(0, h.Unregister(c, ram, size));
        Assert.Equal(0UL, h.TotalPins);
    }
}
