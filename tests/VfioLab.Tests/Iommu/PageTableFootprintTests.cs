using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Tests.Iommu;

/// <summary>The page-table estimate: table pages per level for leaf runs, 4 KiB granule (4 levels) and 64 KiB (3).</summary>
public sealed class PageTableFootprintTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    private static MappedRun Run(ulong iova, ulong size, ulong pageSize) =>
        new(new ByteRange(iova, iova + size - 1), new PhysAddr(0x1_0000_0000), pageSize, IommuProt.Read | IommuProt.Write);

    [Fact]
    public void TablesPerLevel_Empty_OnlyTheRoot()
    {
        Assert.Equal([0UL, 0, 0, 1], PageTableFootprint.TablesPerLevel([], 4 * KiB));
        Assert.Equal(4 * KiB, PageTableFootprint.Bytes([], 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_One4KPage_OneTableAtEveryLevel()
    {
        Assert.Equal([1UL, 1, 1, 1], PageTableFootprint.TablesPerLevel([Run(0x1000, 4 * KiB, 4 * KiB)], 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_2MPages_NeedNoLeafTables()
    {
        Assert.Equal([0UL, 1, 1, 1], PageTableFootprint.TablesPerLevel([Run(0, 1 * GiB, 2 * MiB)], 4 * KiB));
        Assert.Equal([0UL, 2, 1, 1], PageTableFootprint.TablesPerLevel([Run(0, 2 * GiB, 2 * MiB)], 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_1GPages_OnlyTheTwoTopLevels()
    {
        Assert.Equal([0UL, 0, 1, 1], PageTableFootprint.TablesPerLevel([Run(0, 16 * GiB, 1 * GiB)], 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_RunsSharingABlock_CountItOnce_RunsApartCountTwice()
    {
        MappedRun[] sameBlock = [Run(0x1000, 4 * KiB, 4 * KiB), Run(0x3000, 8 * KiB, 4 * KiB)];
        Assert.Equal([1UL, 1, 1, 1], PageTableFootprint.TablesPerLevel(sameBlock, 4 * KiB));
        MappedRun[] apart = [Run(0x1000, 4 * KiB, 4 * KiB), Run(0x1000 + (2 * MiB), 4 * KiB, 4 * KiB)];
        Assert.Equal([2UL, 1, 1, 1], PageTableFootprint.TablesPerLevel(apart, 4 * KiB));
        // 4K pages straddling a 2 MiB boundary need both leaf tables.
        Assert.Equal([2UL, 1, 1, 1], PageTableFootprint.TablesPerLevel([Run((2 * MiB) - (4 * KiB), 8 * KiB, 4 * KiB)], 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_MixedSizes_EachLeafInItsLevel()
    {
        MappedRun[] runs = [Run(0, 2 * MiB, 4 * KiB), Run(2 * MiB, 1022 * MiB, 2 * MiB), Run(1 * GiB, 3 * GiB, 1 * GiB)];
        Assert.Equal([1UL, 1, 1, 1], PageTableFootprint.TablesPerLevel(runs, 4 * KiB));
    }

    [Fact]
    public void TablesPerLevel_64KGranule_ThreeLevelsOf64KTables()
    {
        ulong[] tables = PageTableFootprint.TablesPerLevel([Run(0, 64 * KiB, 64 * KiB), Run(1 * GiB, 512 * MiB, 512 * MiB)], 64 * KiB);
        Assert.Equal([1UL, 1, 1], tables);
        Assert.Equal(3 * 64 * KiB, PageTableFootprint.Bytes([Run(0, 64 * KiB, 64 * KiB)], 64 * KiB));
    }

    [Fact]
    public void TablesPerLevel_IovaPast48Bits_CountsASecondRoot()
    {
        MappedRun[] runs = [Run(0, 4 * KiB, 4 * KiB), Run(1UL << 48, 4 * KiB, 4 * KiB)];
        Assert.Equal([2UL, 2, 2, 2], PageTableFootprint.TablesPerLevel(runs, 4 * KiB));
    }
}
