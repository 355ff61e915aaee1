using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Reports;

/// <summary>How the sizing report writes byte counts.</summary>
public sealed class SizingReportTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong GiB = 1UL << 30;

    [Fact]
    public void Bytes_ExactUnit_AndRoundedReading()
    {
        Assert.Equal("16 GiB", SizingReport.Bytes(16 * GiB));
        Assert.Equal("1536 B (~1.50 KiB)", SizingReport.Bytes(1536));
        Assert.Equal("16777088 KiB (~16.00 GiB)", SizingReport.Bytes((16 * GiB) - (128 * KiB)));
        Assert.Equal("0 B", SizingReport.Bytes(0));
    }

    [Theory]
    [InlineData(4096UL, "4K")]
    [InlineData(2UL << 20, "2M")]
    [InlineData(1UL << 30, "1G")]
    [InlineData(512UL, "512")]
    public void PageSize_PowerOfTwo_BinaryUnitWithoutSpace(ulong size, string expected) =>
        Assert.Equal(expected, SizingReport.PageSize(size));
}
