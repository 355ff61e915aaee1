using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>VFIO_IOMMU_GET_INFO (spec §1.1, §1.4, §2.6): argsz handling, the size probe, the capability
/// chain (MIGRATION, DMA_AVAIL, IOVA_RANGE, 8-byte aligned since v6.6) and the page sizes offered, with
/// sub-PAGE_SIZE IOMMU pages folded into PAGE_SIZE (seed 000).</summary>
public sealed class GetInfoTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const byte Fill = 0xAA;
    private const ulong VtDPgsizes = PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;

    // migration 32 + dma_avail 12 padded to 16 + iova_range header 16 + 16 per range, after the 24-byte struct.
    private static uint NeededSize(int ranges) => (uint)(24 + 32 + 16 + (ranges == 0 ? 0 : 16 + (16 * ranges)));

    [Theory]
    [InlineData(0u)]
    [InlineData(8u)]
    [InlineData(15u)]
    public void GetInfo_ArgszBelow16_ReturnsEINVALAndWritesNothing(uint argsz)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, argsz);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(argsz, BinaryPrimitives.ReadUInt32LittleEndian(buf));
        AssertFilledFrom(buf, 4);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(15)]
    public void GetInfo_BufferShorterThan16_ReturnsEFAULT(int length)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled(length);
        if (length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buf, 256);
        }

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));
    }

    [Fact]
    public void GetInfo_BufferShorterThanArgsz_ReturnsEFAULTOnChainCopy()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled((int)NeededSize(2) - 8);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, NeededSize(2));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));
    }

    [Theory]
    [InlineData("vt-d", 2)]
    [InlineData("vt-d-no-reserved", 1)]
    [InlineData("amd-vi", 3)]
    [InlineData("smmu-v3", 2)]
    public void GetInfo_Argsz16_ReportsNeededSizeAndWritesOnly16Bytes(string profile, int ranges)
    {
        var t = new Type1TestHost(iommu: Profile(profile));
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, 16);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(NeededSize(ranges), BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal((uint)(IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps), BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(4)));
        Assert.Equal(Profile(profile).PgsizeBitmap, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        // cap_offset lies past argsz: not written.
        AssertFilledFrom(buf, 16);
    }

    [Fact]
    public void GetInfo_Argsz24_CapOffsetZeroAndNoChain()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, 24);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(NeededSize(2), BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal((uint)(IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps), BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        AssertFilledFrom(buf, 24);
    }

    [Fact]
    public void GetInfo_Argsz20_WritesCapOffsetButNotPad()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, 20);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(NeededSize(2), BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        AssertFilledFrom(buf, 20);
    }

    [Fact]
    public void GetInfo_ArgszOneByteShortOfChain_ReportsNeededSizeWithoutChain()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, NeededSize(2) - 1);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(NeededSize(2), BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        AssertFilledFrom(buf, 24);
    }

    [Fact]
    public void GetInfo_ExactArgsz_WritesChainAndKeepsArgsz()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        uint needed = NeededSize(2);
        byte[] buf = Filled(256);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, needed);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));

        Assert.Equal(needed, BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal(24u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        AssertFilledFrom(buf, (int)needed);
    }

    [Fact]
    public void GetInfo_FullSize_ChainIsMigrationDmaAvailIovaRangeEachAligned()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();

        byte[] buf = FullInfo(t, c);

        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal((uint)(IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps), BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(4)));
        Assert.Equal(VtDPgsizes, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        Assert.Equal(24u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)));
        List<(ushort Id, int Offset)> chain = Walk(buf);
        Assert.Equal([2, 3, 1], chain.Select(x => (int)x.Id));
        Assert.All(chain, x => Assert.Equal(0, x.Offset % 8));
        Assert.All(chain, x => Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(x.Offset + 2))));

        int mig = chain[0].Offset;
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(mig + 8)));
        Assert.Equal(4 * KiB, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(mig + 16)));
        Assert.Equal(256 * MiB, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(mig + 24)));

        Assert.Equal(65535u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(chain[1].Offset + 8)));

        Assert.Equal(
            [new ByteRange(0, 0xfedfffff), new ByteRange(0xfef00000, (1UL << 48) - 1)],
            IovaRanges(buf, chain[2].Offset));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(chain[2].Offset + 12)));
        // Nothing past the chain.
        AssertFilledFrom(buf, (int)NeededSize(2));
    }

    [Fact]
    public void GetInfo_DmaAvail_FollowsMappings()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(3 * MiB);
        for (ulong i = 0; i < 3; i++)
        {
            Assert.Equal(0, t.Map(c, i * MiB, buf + (i * MiB), 1 * MiB));
        }

        Assert.Equal(65532u, DmaAvail(FullInfo(t, c)));

        Assert.Equal(0, t.Unmap(c, 1 * MiB, 1 * MiB).Ret);
        Assert.Equal(65533u, DmaAvail(FullInfo(t, c)));
        // A failed MAP takes no slot.
        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(65533u, DmaAvail(FullInfo(t, c)));
    }

    [Fact]
    public void GetInfo_OnlyMdevGroup_HasNoIovaRangeCapAndPageMask()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        ulong mem = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, mem, 1 * MiB));
        byte[] probe = Filled(64);
        BinaryPrimitives.WriteUInt32LittleEndian(probe, 16);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, probe));
        Assert.Equal(NeededSize(0), BinaryPrimitives.ReadUInt32LittleEndian(probe));

        byte[] buf = FullInfo(t, c);

        Assert.Equal(~(4 * KiB - 1), BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        List<(ushort Id, int Offset)> chain = Walk(buf);
        Assert.Equal([2, 3], chain.Select(x => (int)x.Id));
        Assert.Equal(4 * KiB, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(chain[0].Offset + 16)));
        Assert.Equal(65534u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(chain[1].Offset + 8)));
        AssertFilledFrom(buf, (int)NeededSize(0));
    }

    [Fact]
    public void GetInfo_V1Container_SameAnswer()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: VfioExtension.Type1Iommu);

        byte[] buf = FullInfo(t, c);

        Assert.Equal(VtDPgsizes, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        Assert.Equal([2, 3, 1], Walk(buf).Select(x => (int)x.Id));
    }

    [Fact]
    public void GetInfo_TwoDomains_PageSizesAndWindowsIntersect()
    {
        var other = IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, new ByteRange(0, (1UL << 39) - 1));
        var t = new Type1TestHost(otherIommu: other);
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Assert.NotSame(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));

        byte[] buf = FullInfo(t, c);

        Assert.Equal(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        List<(ushort Id, int Offset)> chain = Walk(buf);
        Assert.Equal([new ByteRange(0, 0xfedfffff), new ByteRange(0xfef00000, (1UL << 39) - 1)], IovaRanges(buf, chain[2].Offset));
        ulong mem = t.MmapAnonymous(1 * MiB);
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 1UL << 39, mem, 1 * MiB));
        Assert.Equal(0, t.Map(c, (1UL << 39) - MiB, mem, 1 * MiB));
    }

    // ---- a 64 KiB-page host behind a 4 KiB-granule SMMU (seed 000) ----

    [Fact]
    public void GetInfo_64KHostWith4KIommu_ReportsPageSizeAsMinimum()
    {
        var t = new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3);
        (int c, _) = t.Container();

        byte[] buf = FullInfo(t, c);

        Assert.Equal(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)));
        List<(ushort Id, int Offset)> chain = Walk(buf);
        Assert.Equal(64 * KiB, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(chain[0].Offset + 16)));
        Assert.Equal([new ByteRange(0, 0x7ffffff), new ByteRange(0x8100000, (1UL << 48) - 1)], IovaRanges(buf, chain[2].Offset));
    }

    [Fact]
    public void MapDma_64KHostWith4KIommu_PinsOneHostPageAsSixteenIoptes()
    {
        var t = new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0x10000, mem, 64 * KiB));

        Assert.Equal(1UL, t.LockedVmPages);
        Assert.Equal(1UL, t.PinnedFrames);
        Assert.Equal(1UL, t.TotalPins);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(16UL, d.EntryCount(4 * KiB));
        Assert.Equal(16UL, d.TotalEntries);
        Assert.Equal(0, t.Unmap(c, 0x10000, 64 * KiB).Ret);
        Assert.Equal(0UL, d.TotalEntries);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Theory]
    [InlineData(0x1000UL, 0x0UL, 0x10000UL)]
    [InlineData(0x0UL, 0x0UL, 0x1000UL)]
    [InlineData(0x0UL, 0x0UL, 0x11000UL)]
    [InlineData(0x0UL, 0x1000UL, 0x10000UL)]
    public void MapDma_64KHostWith4KIommu_4KAlignedRequest_ReturnsEINVAL(ulong iova, ulong vaddrOffset, ulong size)
    {
        var t = new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, iova, mem + vaddrOffset, size));

        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
    }

    [Fact]
    public void MapDma_64KHostWith4KIommu_2MiBUsesLargeIoptesWhenAligned()
    {
        var t = new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3);
        (int c, _) = t.Container();
        ulong mem = t.MmapHuge(2 * MiB, MmapFlags.Huge2MiB);

        Assert.Equal(0, t.Map(c, 2 * MiB, mem, 2 * MiB));

        Assert.Equal(32UL, t.LockedVmPages);
        Assert.Equal(1UL, t.DomainOf(Type1TestHost.GpuGroup)!.EntryCount(2 * MiB));
        Assert.Equal(1UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
    }

    private static IommuHardwareProfile Profile(string name) => name switch
    {
        "vt-d-no-reserved" => IommuHardwareProfile.VtD with { ReservedRegions = [] },
        _ => IommuHardwareProfile.TryGet(name, out IommuHardwareProfile p) ? p : throw new ArgumentException(name),
    };

    private static byte[] Filled(int length)
    {
        var buf = new byte[length];
        buf.AsSpan().Fill(Fill);
        return buf;
    }

    private static void AssertFilledFrom(byte[] buf, int offset)
    {
        for (int i = offset; i < buf.Length; i++)
        {
            Assert.True(buf[i] == Fill, $"byte {i} was written (0x{buf[i]:x2})");
        }
    }

    private static byte[] FullInfo(Type1TestHost t, int c)
    {
        byte[] buf = Filled(4096);
        BinaryPrimitives.WriteUInt32LittleEndian(buf, 4096);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));
        return buf;
    }

    // The capabilities from cap_offset, following next (offsets from the buffer's start) until 0.
    private static List<(ushort Id, int Offset)> Walk(byte[] buf)
    {
        var chain = new List<(ushort, int)>();
        int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16));
        while (offset != 0)
        {
            Assert.True(chain.Count < 8, "capability chain loops");
            Assert.InRange(offset, 24, buf.Length - 8);
            chain.Add((BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(offset)), offset));
            offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(offset + 4));
        }
        return chain;
    }

    private static uint DmaAvail(byte[] buf)
    {
        foreach ((ushort id, int offset) in Walk(buf))
        {
            if (id == (ushort)IommuType1InfoCapId.DmaAvail)
            {
                return BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(offset + 8));
            }
        }
        throw new Xunit.Sdk.XunitException("no DMA_AVAIL capability");
    }

    private static List<ByteRange> IovaRanges(byte[] buf, int offset)
    {
        Assert.Equal((ushort)IommuType1InfoCapId.IovaRange, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(offset)));
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(offset + 8));
        var ranges = new List<ByteRange>();
        for (int i = 0; i < n; i++)
        {
            int e = offset + 16 + (16 * i);
            ranges.Add(new ByteRange(BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(e)), BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(e + 8))));
        }
        return ranges;
    }
}
