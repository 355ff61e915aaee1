using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Vfio;
using static VfioLab.Tests.Type1.Type1TestHost;

namespace VfioLab.Tests.Type1;

/// <summary>UNMAP_DMA writes its struct back as it came with the size removed (<see cref="IoctlArgument.TryCopyToWith"/>,
/// which stores the size where the copy lands instead of into the copy first): through a caller's buffer and through a
/// pointer into the process's memory, the same bytes; nothing past minsz; EFAULT where the struct cannot be written,
/// the mapping removed all the same. <see cref="IoctlArgument.TryCopyToWith"/> against <see cref="IoctlArgument.TryCopyTo"/>
/// of the changed struct on both kinds of argument.</summary>
public sealed class UnmapDmaCopyBackTests
{
    private const ulong Iova = 0x10_0000;

    private static (Type1TestHost T, int Container, ulong Vaddr) Mapped()
    {
        var t = new Type1TestHost();
        (int container, _) = t.Container();
        ulong vaddr = t.MmapAnonymous(4 * t.PageSize, populate: true);
        Assert.Equal(0, t.Map(container, Iova, vaddr, 2 * t.PageSize));
        return (t, container, vaddr);
    }

    private static byte[] UnmapStruct(uint argsz, ulong size, int length)
    {
        var bytes = new byte[length];
        bytes.AsSpan().Fill(0xA5);
        new VfioIommuType1DmaUnmap { Argsz = argsz, Flags = DmaUnmapFlags.None, Iova = Iova, Size = size }.Write(bytes);
        return bytes;
    }

    private static byte[] Expected(byte[] asked, ulong unmapped)
    {
        byte[] expected = (byte[])asked.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(expected.AsSpan(VfioIommuType1DmaUnmap.Offsets.Size), unmapped);
        return expected;
    }

    [Fact]
    public void UnmapDma_Buffer_WritesTheStructBackWithTheSizeRemovedAndNothingPastMinsz()
    {
        (Type1TestHost t, int container, _) = Mapped();
        byte[] asked = UnmapStruct(VfioIommuType1DmaUnmap.SizeOf + 8, 4 * t.PageSize, VfioIommuType1DmaUnmap.SizeOf + 8);
        byte[] buffer = (byte[])asked.Clone();

        Assert.Equal(0, t.Sys.Ioctl(container, VfioIoctl.IommuUnmapDma, buffer));

        Assert.Equal(Expected(asked, 2 * t.PageSize), buffer);
        Assert.Equal(0UL, t.Backend(container).MappingCount);
    }

    [Fact]
    public void UnmapDma_Pointer_WritesTheSameBytesIntoProcessMemory()
    {
        (Type1TestHost t, int container, ulong vaddr) = Mapped();
        ulong at = vaddr + (3 * t.PageSize) + 0x10;
        byte[] asked = UnmapStruct(VfioIommuType1DmaUnmap.SizeOf, 4 * t.PageSize, VfioIommuType1DmaUnmap.SizeOf + 8);
        Assert.Equal(0, t.Sys.WriteMemory(at, asked));

        Assert.Equal(0, t.Sys.Ioctl(container, VfioIoctl.IommuUnmapDma, at));

        var back = new byte[asked.Length];
        Assert.Equal(0, t.Sys.ReadMemory(at, back));
        Assert.Equal(Expected(asked, 2 * t.PageSize), back);
        Assert.Equal(0UL, t.Backend(container).MappingCount);
    }

    [Fact]
    public void UnmapDma_PointerWhoseSizeLiesInReadOnlyMemory_ReturnsEFAULTWritesWhatPrecedesAndTheMappingsStayRemoved()
    {
        // The struct ends a read-write page; its size field lies at the start of a read-only page after it (which reads as
        // zero: UNMAP ALL, which takes size 0). The copy back writes the first 16 bytes and faults at the size.
        (Type1TestHost t, int container, _) = Mapped();
        ulong rw = t.MmapAnonymous(2 * t.PageSize);
        Assert.Equal(0, t.Sys.Munmap(rw + t.PageSize, t.PageSize));
        Assert.Equal((long)(rw + t.PageSize), t.Sys.Mmap(rw + t.PageSize, t.PageSize, MemoryProtection.Read,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed, -1, 0));
        ulong at = rw + t.PageSize - 16;
        byte[] head = UnmapStruct(VfioIommuType1DmaUnmap.SizeOf, 0, VfioIommuType1DmaUnmap.SizeOf)[..16];
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(VfioIommuType1DmaUnmap.Offsets.Flags), (uint)DmaUnmapFlags.All);
        BinaryPrimitives.WriteUInt64LittleEndian(head.AsSpan(VfioIommuType1DmaUnmap.Offsets.Iova), 0);
        Assert.Equal(0, t.Sys.WriteMemory(at, head));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(container, VfioIoctl.IommuUnmapDma, at));

        Assert.Equal(0UL, t.Backend(container).MappingCount);
        var back = new byte[24];
        Assert.Equal(0, t.Sys.ReadMemory(at, back));
        Assert.Equal([.. head, .. new byte[8]], back);
    }

    [Theory]
    [InlineData(0, 24)]
    [InlineData(8, 32)]
    [InlineData(8, 31)]
    [InlineData(0, 23)]
    [InlineData(-1, 40)]
    public void TryCopyToWith_Buffer_MatchesTryCopyToOfTheChangedStruct(int offset, int bufferLength)
    {
        byte[] source = UnmapStruct(24, 0x1234, 24);
        byte[] viaWith = new byte[bufferLength];
        byte[] viaCopy = new byte[bufferLength];
        viaWith.AsSpan().Fill(0x5A);
        viaCopy.AsSpan().Fill(0x5A);

        bool with = IoctlArgument.FromBuffer(viaWith, null).TryCopyToWith(offset, source, 16, 0xFEDC_BA98_7654_3210);
        bool copy = IoctlArgument.FromBuffer(viaCopy, null).TryCopyTo(offset, Expected(source, 0xFEDC_BA98_7654_3210));

        Assert.Equal(copy, with);
        Assert.Equal(viaCopy, viaWith);
    }

    [Fact]
    public void TryCopyToWith_Pointer_MatchesTryCopyToOfTheChangedStruct()
    {
        (Type1TestHost t, _, ulong vaddr) = Mapped();
        ulong a = vaddr + 0x100;
        ulong b = vaddr + 0x200;
        byte[] source = UnmapStruct(24, 0x1234, 24);

        bool with = IoctlArgument.FromValue(a, t.Process).TryCopyToWith(0, source, 16, 0x77);
        bool copy = IoctlArgument.FromValue(b, t.Process).TryCopyTo(0, Expected(source, 0x77));

        Assert.True(with);
        Assert.True(copy);
        var atA = new byte[24];
        var atB = new byte[24];
        Assert.Equal(0, t.Sys.ReadMemory(a, atA));
        Assert.Equal(0, t.Sys.ReadMemory(b, atB));
        Assert.Equal(atB, atA);
        // Unmapped memory: both fail.
        Assert.False(IoctlArgument.FromValue(0x10, t.Process).TryCopyToWith(0, source, 16, 0x77));
        Assert.False(IoctlArgument.FromValue(0x10, t.Process).TryCopyTo(0, Expected(source, 0x77)));
    }
}
