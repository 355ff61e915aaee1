using VfioLab.Addressing;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class IommuHardwareProfileTests
{
    [Fact]
    public void VtD_Data_MatchesDriver()
    {
        IommuHardwareProfile p = IommuHardwareProfile.VtD;
        Assert.Equal(K4 | M2 | G1, p.PgsizeBitmap);
        Assert.Equal(new ByteRange(0, (1UL << 48) - 1), p.Aperture);
        Assert.Equal([new ReservedRegion(new ByteRange(0xfee00000, 0xfeefffff), ReservedRegionType.Msi)], p.ReservedRegions);
        Assert.True(p.IsolatedMsi);
    }

    [Fact]
    public void AmdVi_Bitmap_AllPowersFrom4KTo2Pow51Except512G()
    {
        IommuHardwareProfile p = IommuHardwareProfile.AmdVi;
        Assert.Equal(K4, PageSizeBitmap.MinPageSize(p.PgsizeBitmap));
        Assert.Equal(1UL << 51, PageSizeBitmap.MaxPageSize(p.PgsizeBitmap));
        Assert.False(PageSizeBitmap.Supports(p.PgsizeBitmap, 1UL << 39));
        Assert.True(PageSizeBitmap.Supports(p.PgsizeBitmap, K64));
        Assert.Contains(new ReservedRegion(new ByteRange(0xfd00000000, 0xffffffffff), ReservedRegionType.Reserved), p.ReservedRegions);
    }

    [Fact]
    public void SmmuV3_Data_HasSwMsiWindowAnd64KVariant()
    {
        Assert.Equal([new ReservedRegion(new ByteRange(0x8000000, 0x80fffff), ReservedRegionType.SwMsi)], IommuHardwareProfile.SmmuV3.ReservedRegions);
        Assert.Equal(K64 | (1UL << 29), IommuHardwareProfile.SmmuV3Granule64K.PgsizeBitmap);
        Assert.Equal(K4 | K64 | (1UL << 24), IommuHardwareProfile.SpaprTce.PgsizeBitmap);
        Assert.Equal(new ByteRange(0, (2UL << 30) - 1), IommuHardwareProfile.SpaprTce.Aperture);
    }

    [Fact]
    public void WithOverrides_ExtraRegion_AddedToDriverRegionsSorted()
    {
        var extra = new ReservedRegion(new ByteRange(0x1000, 0x1fff), ReservedRegionType.Direct);
        IommuHardwareProfile p = IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: K4, aperture: new ByteRange(0, 0x7fffffffff), extraReservedRegions: [extra]);
        Assert.Equal(K4, p.PgsizeBitmap);
        Assert.Equal(new ByteRange(0, 0x7fffffffff), p.Aperture);
        Assert.Equal(extra, p.ReservedRegions[0]);
        Assert.Equal(2, p.ReservedRegions.Count);
        Assert.Equal("intel-iommu", p.OpsName);
    }

    [Fact]
    public void TryGet_ScenarioNames_Resolve()
    {
        Assert.True(IommuHardwareProfile.TryGet("amd-vi", out IommuHardwareProfile amd));
        Assert.Same(IommuHardwareProfile.AmdVi, amd);
        Assert.False(IommuHardwareProfile.TryGet("nope", out _));
        Assert.True(ReservedRegionTypeNames.TryParse("direct-relaxable", out ReservedRegionType t));
        Assert.Equal(ReservedRegionType.DirectRelaxable, t);
    }
}
