using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>Parsing and formatting flags and ids by their C short names.</summary>
public sealed class AbiNamesTests
{
    [Fact]
    public void Format_FlagSet_JoinsShortNamesWithBar()
    {
        Assert.Equal("READ|WRITE", AbiNames.Format(DmaMapFlags.Read | DmaMapFlags.Write));
        Assert.Equal("GET_DIRTY_BITMAP", AbiNames.Format(DmaUnmapFlags.GetDirtyBitmap));
        Assert.Equal("VIABLE|CONTAINER_SET", AbiNames.Format(GroupStatusFlags.Viable | GroupStatusFlags.ContainerSet));
    }

    [Fact]
    public void Format_EmptyFlagSet_ReturnsZero()
    {
        Assert.Equal("0", AbiNames.Format(DirtyPagesFlags.None));
    }

    [Fact]
    public void Format_UnknownBits_AppendsHex()
    {
        Assert.Equal("READ|0x18", AbiNames.Format((DmaMapFlags)0x19));
    }

    [Fact]
    public void Format_NonFlagValue_ReturnsNameOrNumber()
    {
        Assert.Equal("SPARSE_MMAP", AbiNames.Format(RegionInfoCapId.SparseMmap));
        Assert.Equal("DISABLE", AbiNames.Format(EehPeOperation.Disable));
        Assert.Equal("42", AbiNames.Format((VfioPciRegionIndex)42));
    }

    [Theory]
    [InlineData("READ|WRITE", DmaMapFlags.Read | DmaMapFlags.Write)]
    [InlineData(" WRITE | READ ", DmaMapFlags.Read | DmaMapFlags.Write)]
    [InlineData("VADDR", DmaMapFlags.Vaddr)]
    [InlineData("0", DmaMapFlags.None)]
    [InlineData("0x3", DmaMapFlags.Read | DmaMapFlags.Write)]
    [InlineData("READ|4", DmaMapFlags.Read | DmaMapFlags.Vaddr)]
    public void TryParse_FlagText_ReturnsValue(string text, DmaMapFlags expected)
    {
        Assert.True(AbiNames.TryParse(text, out DmaMapFlags flags));
        Assert.Equal(expected, flags);
    }

    [Theory]
    [InlineData("read")]
    [InlineData("READ|")]
    [InlineData("")]
    [InlineData("ALL")]
    [InlineData("0x100000000")]
    [InlineData("-1")]
    public void TryParse_BadFlagText_ReturnsFalse(string text)
    {
        Assert.False(AbiNames.TryParse(text, out DmaMapFlags _));
    }

    [Fact]
    public void TryParse_ShortNameWithinItsOwnStruct_ResolvesPerStruct()
    {
        Assert.True(AbiNames.TryParse("ALL", out DmaUnmapFlags unmap));
        Assert.Equal(DmaUnmapFlags.All, unmap);
        Assert.True(AbiNames.TryParse("START", out DirtyPagesFlags dirty));
        Assert.Equal(DirtyPagesFlags.Start, dirty);
        Assert.True(AbiNames.TryParse("CONFIG", out VfioPciRegionIndex region));
        Assert.Equal(VfioPciRegionIndex.Config, region);
        Assert.True(AbiNames.TryParse("DMA_AVAIL", out IommuType1InfoCapId cap));
        Assert.Equal(IommuType1InfoCapId.DmaAvail, cap);
    }

    [Fact]
    public void TryParse_NonFlagEnum_RejectsBarList()
    {
        Assert.False(AbiNames.TryParse("BAR0|BAR1", out VfioPciRegionIndex _));
    }

    [Fact]
    public void TryParse_NumberTooLargeForUnderlyingType_ReturnsFalse()
    {
        Assert.False(AbiNames.TryParse("0x10000", out RegionInfoCapId _));
    }

    [Fact]
    public void GetName_UndefinedOrCombinedValue_ReturnsNull()
    {
        Assert.Equal("MSIX", AbiNames.GetName(VfioPciIrqIndex.Msix));
        Assert.Null(AbiNames.GetName(DmaMapFlags.Read | DmaMapFlags.Write));
    }

    [Fact]
    public void GetEntries_FlagEnum_LeavesOutZero()
    {
        Assert.Equal(["READ", "WRITE", "VADDR"], AbiNames.GetEntries<DmaMapFlags>().Select(e => e.Key));
        Assert.Equal("NORMAL", AbiNames.GetEntries<EehPeState>()[0].Key);
    }

    [Theory]
    [InlineData("ContainerSet", "CONTAINER_SET")]
    [InlineData("GetDirtyBitmap", "GET_DIRTY_BITMAP")]
    [InlineData("Nvlink2Ssatgt", "NVLINK2_SSATGT")]
    [InlineData("Bar0", "BAR0")]
    [InlineData("FslMc", "FSL_MC")]
    public void ToShortName_PascalCase_ReturnsUpperSnake(string member, string expected)
    {
        Assert.Equal(expected, AbiNames.ToShortName(member));
    }
}
