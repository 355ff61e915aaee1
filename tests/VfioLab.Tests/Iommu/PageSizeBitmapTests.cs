using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class PageSizeBitmapTests
{
    [Fact]
    public void LargestFitting_AllAlignedAndLongEnough_ReturnsLargestSize()
    {
        Assert.Equal(G1, PageSizeBitmap.LargestFitting(K4 | M2 | G1, G1, 2 * G1, 4 * G1));
    }

    [Fact]
    public void LargestFitting_RemainingShorterThanLargest_ReturnsSizeThatFits()
    {
        Assert.Equal(M2, PageSizeBitmap.LargestFitting(K4 | M2 | G1, 0, 0, G1 - K4));
    }

    [Fact]
    public void LargestFitting_PhysOnlyAlignedTo4K_ReturnsMinimum()
    {
        Assert.Equal(K4, PageSizeBitmap.LargestFitting(K4 | M2 | G1, 0, M2 + K4, G1));
    }

    [Fact]
    public void LargestFitting_MisalignedToMinimum_ReturnsZero()
    {
        Assert.Equal(0UL, PageSizeBitmap.LargestFitting(K4 | M2, 0x800, 0, M2));
    }

    [Fact]
    public void FoldSubPageSizes_BitsBelowPageSize_ClearedAndPageSizeSet()
    {
        Assert.Equal(K64 | M2, PageSizeBitmap.FoldSubPageSizes(K4 | M2, K64));
    }

    [Fact]
    public void FoldSubPageSizes_NoBitsBelowPageSize_Unchanged()
    {
        Assert.Equal(K4 | M2 | G1, PageSizeBitmap.FoldSubPageSizes(K4 | M2 | G1, K4));
        Assert.Equal(M2, PageSizeBitmap.FoldSubPageSizes(M2, K4));
    }

    [Fact]
    public void Format_ThreeSizes_PipeSeparated()
    {
        Assert.Equal("4K|2M|1G", PageSizeBitmap.Format(K4 | M2 | G1));
        Assert.Equal(K4, PageSizeBitmap.MinPageSize(K4 | G1));
        Assert.Equal(G1, PageSizeBitmap.MaxPageSize(K4 | G1));
    }
}
