using System.Reflection;
using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>Request codes and their name table.</summary>
public sealed class VfioIoctlTests
{
    [Fact]
    public void Constants_CommonCodes_HaveLinuxValues()
    {
        Assert.Equal(0x3B64u, VfioIoctl.GetApiVersion);
        Assert.Equal(0x3B71u, VfioIoctl.IommuMapDma);
        Assert.Equal(0x3B72u, VfioIoctl.IommuUnmapDma);
        Assert.Equal(0x3B75u, VfioIoctl.IommuDirtyPages);
        Assert.Equal(0x3B79u, VfioIoctl.EehPeOp);
        Assert.Equal(0, VfioIoctl.ApiVersion);
    }

    [Fact]
    public void All_EveryRequestConstant_IsListedOnceWithItsCode()
    {
        string[] notCodes = [nameof(VfioIoctl.ApiVersion), nameof(VfioIoctl.Type), nameof(VfioIoctl.Base)];
        FieldInfo[] constants = [.. typeof(VfioIoctl).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && !notCodes.Contains(f.Name))];

        Assert.Equal(constants.Length, VfioIoctl.All.Count);
        Assert.Equal(VfioIoctl.All.Count, VfioIoctl.All.Select(i => i.Name).Distinct().Count());
        foreach (FieldInfo f in constants)
        {
            string cName = "VFIO_" + AbiNames.ToShortName(f.Name);
            Assert.True(VfioIoctl.TryParse(cName, out uint code), $"{f.Name}: {cName} not in the table");
            Assert.Equal((uint)f.GetRawConstantValue()!, code);
        }
    }

    [Fact]
    public void All_Codes_AreIoOfTypeAndBasePlusNumber()
    {
        Assert.All(VfioIoctl.All, i =>
        {
            Assert.Equal(VfioIoctl.Type, i.Code >> 8);
            Assert.InRange(i.Code & 0xFF, VfioIoctl.Base, VfioIoctl.Base + 21);
        });
    }

    [Theory]
    [InlineData("VFIO_IOMMU_MAP_DMA", 0x3B71u)]
    [InlineData("VFIO_GROUP_SET_CONTAINER", 0x3B68u)]
    [InlineData("VFIO_IOMMU_SPAPR_TCE_CREATE", 0x3B77u)]
    public void TryParse_CMacroName_ReturnsCode(string name, uint expected)
    {
        Assert.True(VfioIoctl.TryParse(name, out uint code));
        Assert.Equal(expected, code);
    }

    [Theory]
    [InlineData("vfio_iommu_map_dma")]
    [InlineData("IOMMU_MAP_DMA")]
    [InlineData("")]
    public void TryParse_UnknownName_ReturnsFalse(string name)
    {
        Assert.False(VfioIoctl.TryParse(name, out _));
    }

    [Fact]
    public void GetNames_SharedCode_ReturnsEveryName()
    {
        Assert.Equal(
            ["VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", "VFIO_IOMMU_GET_INFO", "VFIO_IOMMU_SPAPR_TCE_GET_INFO"],
            VfioIoctl.GetNames(0x3B70));
    }

    [Theory]
    [InlineData(VfioIoctlTarget.Type1, "VFIO_IOMMU_GET_INFO")]
    [InlineData(VfioIoctlTarget.Spapr, "VFIO_IOMMU_SPAPR_TCE_GET_INFO")]
    [InlineData(VfioIoctlTarget.Device, "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO")]
    public void TryGetName_SharedCodeAndTarget_ReturnsThatTargetsName(VfioIoctlTarget target, string expected)
    {
        Assert.True(VfioIoctl.TryGetName(0x3B70, target, out string name));
        Assert.Equal(expected, name);
    }

    [Fact]
    public void TryGetName_CodeUnknownToTarget_ReturnsFalse()
    {
        Assert.False(VfioIoctl.TryGetName(VfioIoctl.IommuMapDma, VfioIoctlTarget.Group, out _));
    }

    [Fact]
    public void Describe_UnknownCode_ReturnsHex()
    {
        Assert.Equal("0x1234", VfioIoctl.Describe(0x1234));
        Assert.Equal("VFIO_DEVICE_PCI_HOT_RESET/VFIO_IOMMU_MAP_DMA", VfioIoctl.Describe(0x3B71));
    }

    [Fact]
    public void TryGetInfo_Name_ReturnsTarget()
    {
        Assert.True(VfioIoctl.TryGetInfo("VFIO_EEH_PE_OP", out VfioIoctlInfo info));
        Assert.Equal(new VfioIoctlInfo("VFIO_EEH_PE_OP", 0x3B79, VfioIoctlTarget.Spapr), info);
    }
}
