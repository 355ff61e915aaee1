using VfioLab.Collections;
using VfioLab.Iommu;
using VfioLab.Spapr;

namespace VfioLab.Tests.Spapr;

/// <summary>Each sPAPR invariant breaks under exactly its name when the state is corrupted through a test hook.</summary>
public sealed class SpaprInvariantTests
{
    private const ulong KiB = SpaprTestHost.KiB;

    private static (SpaprTestHost H, int C, MmIommuRegion Region) MappedV2()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: true);
        ulong ram = h.MmapAnonymous(1UL << 20);
        Assert.Equal(0, h.Register(c, ram, 1UL << 20));
        Assert.Equal(0, h.Map(c, 0, ram, 256 * KiB));
        h.AssertClean();
        return (h, c, Assert.Single(h.Driver.Mms.Of(h.Process.LastMm).Regions));
    }

    [Fact]
    public void Check_RegionReleasedWhileMapped_ReportsPreregNotReleasedWhileMapped()
    {
        (SpaprTestHost h, int c, MmIommuRegion region) = MappedV2();
        h.Backend(c).MarkRegionReleasedForTest(region);
        h.AssertBroken("prereg-not-released-while-mapped");
    }

    [Fact]
    public void Check_TcePointingElsewhereThanItsUa_ReportsTceUserspaceConsistent()
    {
        (SpaprTestHost h, _, _) = MappedV2();
        TceTable table = h.Pe(SpaprTestHost.GpuGroup).Windows[0]!;
        Run<TceEntryRun> first = table.Runs()[0];
        table.Exchange(first.Start, 1, first.Value with { Hpa = first.Value.Hpa + (1UL << 20) }, []);
        h.AssertBroken("tce-userspace-consistent");
    }
}
