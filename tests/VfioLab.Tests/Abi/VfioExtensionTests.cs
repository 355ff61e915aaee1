using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>Extension and IOMMU-type ids and their names.</summary>
public sealed class VfioExtensionTests
{
    [Theory]
    [InlineData("VFIO_TYPE1_IOMMU", 1u)]
    [InlineData("VFIO_TYPE1v2_IOMMU", 3u)]
    [InlineData("VFIO_SPAPR_TCE_v2_IOMMU", 7u)]
    [InlineData("VFIO_UPDATE_VADDR", 10u)]
    public void TryParse_CMacroName_ReturnsId(string name, uint expected)
    {
        Assert.True(VfioExtension.TryParse(name, out uint id));
        Assert.Equal(expected, id);
    }

    [Fact]
    public void TryParse_WrongCase_ReturnsFalse()
    {
        Assert.False(VfioExtension.TryParse("VFIO_TYPE1V2_IOMMU", out _));
    }

    [Fact]
    public void TryGetName_EveryIdFromOneToTen_HasAName()
    {
        for (uint id = 1; id <= 10; id++)
        {
            Assert.True(VfioExtension.TryGetName(id, out string name));
            Assert.True(VfioExtension.TryParse(name, out uint back));
            Assert.Equal(id, back);
        }
        Assert.False(VfioExtension.TryGetName(11, out _));
    }

    [Fact]
    public void Constants_MatchTable()
    {
        Assert.Equal(
            [VfioExtension.Type1Iommu, VfioExtension.SpaprTceIommu, VfioExtension.Type1v2Iommu, VfioExtension.DmaCcIommu,
             VfioExtension.Eeh, VfioExtension.Type1NestingIommu, VfioExtension.SpaprTceV2Iommu, VfioExtension.NoiommuIommu,
             VfioExtension.UnmapAll, VfioExtension.UpdateVaddr],
            VfioExtension.All.Select(c => (uint)c.Value));
    }
}
