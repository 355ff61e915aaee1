using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>vfio-pci region offsets in the device fd.</summary>
public sealed class VfioPciTests
{
    [Fact]
    public void IndexToOffset_ConfigRegion_IsIndexShiftedBy40()
    {
        Assert.Equal(0x700_0000_0000UL, VfioPci.IndexToOffset(VfioPciRegionIndex.Config));
        Assert.Equal(0UL, VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0));
    }

    [Fact]
    public void OffsetToIndex_OffsetInsideRegion_ReturnsIndex()
    {
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Bar2) + 0x1234;

        Assert.Equal((uint)VfioPciRegionIndex.Bar2, VfioPci.OffsetToIndex(offset));
        Assert.Equal(0x1234UL, offset & VfioPci.OffsetMask);
    }

    [Fact]
    public void Counts_MatchEnums()
    {
        Assert.Equal(VfioPci.NumRegions, (uint)VfioPciRegionIndex.Vga + 1);
        Assert.Equal(VfioPci.NumIrqs, (uint)VfioPciIrqIndex.Req + 1);
    }
}
