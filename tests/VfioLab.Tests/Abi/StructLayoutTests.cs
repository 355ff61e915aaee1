using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>The bytes of the structs the backends use most, checked at literal offsets taken from linux/vfio.h.</summary>
public sealed class StructLayoutTests
{
    private static ulong U64(byte[] b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at));

    private static uint U32(byte[] b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));

    [Fact]
    public void DmaMap_Write_PutsFieldsAtCOffsets()
    {
        byte[] b = AbiStruct.ToArray(new VfioIommuType1DmaMap
        {
            Argsz = 32,
            Flags = DmaMapFlags.Read | DmaMapFlags.Write,
            Vaddr = 0x7F00_0000_0000,
            Iova = 0x1000_0000,
            Size = 0x20_0000,
        });

        Assert.Equal(32, b.Length);
        Assert.Equal(32u, U32(b, 0));
        Assert.Equal(3u, U32(b, 4));
        Assert.Equal(0x7F00_0000_0000UL, U64(b, 8));
        Assert.Equal(0x1000_0000UL, U64(b, 16));
        Assert.Equal(0x20_0000UL, U64(b, 24));
    }

    [Fact]
    public void DmaUnmap_WithBitmapInData_ReadsBackBoth()
    {
        byte[] arg = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
        new VfioIommuType1DmaUnmap { Argsz = 48, Flags = DmaUnmapFlags.GetDirtyBitmap, Iova = 0x4000, Size = 0x8000 }.Write(arg);
        new VfioBitmap { Pgsize = 0x1000, Size = 8, Data = 0x5555_0000 }.Write(arg.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));

        Assert.Equal(24, VfioIommuType1DmaUnmap.Offsets.Data);
        Assert.Equal(0x1000UL, U64(arg, 24));
        Assert.Equal(0x5555_0000UL, U64(arg, 40));
        Assert.True(VfioIommuType1DmaUnmap.TryRead(arg, out VfioIommuType1DmaUnmap unmap));
        Assert.True(VfioBitmap.TryRead(arg.AsSpan(24), out VfioBitmap bitmap));
        Assert.Equal(DmaUnmapFlags.GetDirtyBitmap, unmap.Flags);
        Assert.Equal(0x8000UL, unmap.Size);
        Assert.Equal(8UL, bitmap.Size);
    }

    [Fact]
    public void DirtyBitmapGet_NestedBitmap_StartsAtSixteen()
    {
        byte[] b = AbiStruct.ToArray(new VfioIommuType1DirtyBitmapGet
        {
            Iova = 0x10000,
            Size = 0x40000,
            Bitmap = new VfioBitmap { Pgsize = 0x1000, Size = 8, Data = 0xABC000 },
        });

        Assert.Equal(40, b.Length);
        Assert.Equal(0x1000UL, U64(b, 16));
        Assert.Equal(8UL, U64(b, 24));
        Assert.Equal(0xABC000UL, U64(b, 32));
    }

    [Fact]
    public void Type1InfoCapMigration_Write_HeaderThenAlignedFields()
    {
        byte[] b = AbiStruct.ToArray(new VfioIommuType1InfoCapMigration
        {
            Header = new VfioInfoCapHeader { Id = (ushort)IommuType1InfoCapId.Migration, Version = 1, Next = 56 },
            PgsizeBitmap = 0x1000,
            MaxDirtyBitmapSize = 256UL << 20,
        });

        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(b));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(2)));
        Assert.Equal(56u, U32(b, 4));
        Assert.Equal(0u, U32(b, 12));
        Assert.Equal(0x1000UL, U64(b, 16));
        Assert.Equal(256UL << 20, U64(b, 24));
    }

    [Fact]
    public void EehPeOp_Err_StartsAtSixteenAfterPadding()
    {
        byte[] b = AbiStruct.ToArray(new VfioEehPeOp
        {
            Argsz = 40,
            Op = EehPeOperation.InjectErr,
            Err = new VfioEehPeErr { Type = 1, Func = 2, Addr = 3, Mask = 4 },
        });

        Assert.Equal(9u, U32(b, 8));
        Assert.Equal(0u, U32(b, 12));
        Assert.Equal(1u, U32(b, 16));
        Assert.Equal(2u, U32(b, 20));
        Assert.Equal(3UL, U64(b, 24));
        Assert.Equal(4UL, U64(b, 32));
    }

    [Fact]
    public void SpaprTceCreate_StartAddr_IsLastField()
    {
        byte[] b = AbiStruct.ToArray(new VfioIommuSpaprTceCreate { PageShift = 16, WindowSize = 1UL << 40, Levels = 2, StartAddr = 0x0800_0000_0000_0000 });

        Assert.Equal(16u, U32(b, 8));
        Assert.Equal(1UL << 40, U64(b, 16));
        Assert.Equal(2u, U32(b, 24));
        Assert.Equal(0x0800_0000_0000_0000UL, U64(b, 32));
    }

    [Fact]
    public void PciDependentDevice_Write_PacksSegmentBusDevfn()
    {
        byte[] b = AbiStruct.ToArray(new VfioPciDependentDevice { GroupId = 12, Segment = 0x10, Bus = 0x3A, Devfn = (2 << 3) | 1 });

        Assert.Equal(new byte[] { 12, 0, 0, 0, 0x10, 0, 0x3A, 0x11 }, b);
    }
}
