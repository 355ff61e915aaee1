using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>Reading only minsz bytes and writing back only min(argsz, sizeof) bytes, as the kernel does.</summary>
public sealed class AbiStructPartialCopyTests
{
    [Fact]
    public void TryRead_WithMinSizeLength_FieldsPastLengthReadAsZero()
    {
        byte[] user = AbiStruct.ToArray(new VfioIommuType1Info { Argsz = 24, Flags = IommuInfoFlags.Caps, IovaPgsizes = 0x1000, CapOffset = 0x55 });

        Assert.True(VfioIommuType1Info.TryRead(user, VfioIommuType1Info.MinSize, out VfioIommuType1Info info));

        Assert.Equal(24u, info.Argsz);
        Assert.Equal(IommuInfoFlags.Caps, info.Flags);
        Assert.Equal(0x1000UL, info.IovaPgsizes);
        Assert.Equal(0u, info.CapOffset);
    }

    [Fact]
    public void TryRead_LengthInsideField_KeepsOnlyTheCopiedBytes()
    {
        byte[] user = AbiStruct.ToArray(new VfioIommuType1DmaMap { Size = 0x1122334455667788 });

        Assert.True(VfioIommuType1DmaMap.TryRead(user, VfioIommuType1DmaMap.Offsets.Size + 2, out VfioIommuType1DmaMap map));

        Assert.Equal(0x7788UL, map.Size);
    }

    [Fact]
    public void TryRead_SourceShorterThanLength_ReturnsFalse()
    {
        Assert.False(VfioIommuType1DmaUnmap.TryRead(new byte[10], 12, out _));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(VfioGroupStatus.SizeOf + 1)]
    public void TryRead_LengthOutsideStruct_ReturnsFalse(int length)
    {
        Assert.False(VfioGroupStatus.TryRead(new byte[64], length, out _));
    }

    [Fact]
    public void TryRead_SourceLongerThanStruct_ReadsOnlyTheStruct()
    {
        byte[] user = new byte[VfioGroupStatus.SizeOf + 4];
        user[0] = 8;
        user[4] = 3;
        user[8] = 0xFF;

        Assert.True(VfioGroupStatus.TryRead(user, out VfioGroupStatus status));

        Assert.Equal(8u, status.Argsz);
        Assert.Equal(GroupStatusFlags.Viable | GroupStatusFlags.ContainerSet, status.Flags);
    }

    [Fact]
    public void Write_WithLength_LeavesBytesPastLengthUntouched()
    {
        byte[] user = new byte[VfioIommuType1Info.SizeOf];
        Array.Fill(user, (byte)0xEE);
        var info = new VfioIommuType1Info { Argsz = 104, Flags = IommuInfoFlags.Pgsizes, IovaPgsizes = 0xFFFFF000, CapOffset = 24 };

        info.Write(user, VfioIommuType1Info.MinSize);

        Assert.True(VfioIommuType1Info.TryRead(user, VfioIommuType1Info.MinSize, out VfioIommuType1Info back));
        Assert.Equal(104u, back.Argsz);
        Assert.Equal(0xFFFFF000UL, back.IovaPgsizes);
        Assert.All(user[VfioIommuType1Info.MinSize..], b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void Write_DestinationShorterThanStruct_ThrowsAndWritesNothing()
    {
        byte[] user = new byte[VfioIommuType1DmaMap.SizeOf - 1];

        Assert.Throws<ArgumentException>(() => new VfioIommuType1DmaMap { Argsz = 32 }.Write(user));
        Assert.All(user, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(-1, 64)]
    [InlineData(VfioBitmap.SizeOf + 1, 64)]
    [InlineData(16, 8)]
    public void Write_WithLengthOutOfRange_Throws(int length, int destinationLength)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VfioBitmap().Write(new byte[destinationLength], length));
    }
}
