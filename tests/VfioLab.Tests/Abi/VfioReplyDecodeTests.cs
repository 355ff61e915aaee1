using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>The shared decoders of variable-length replies (type1 GET_INFO, GET_REGION_INFO, GET_PCI_HOT_RESET_INFO)
/// and the hot-reset argument's group fds: what fits is decoded, what does not is named in <c>Error</c>.</summary>
public sealed class VfioReplyDecodeTests
{
    private static VfioInfoCapHeader Header(IommuType1InfoCapId id, uint next) => new() { Id = (ushort)id, Version = 1, Next = next };

    /// <summary>A type1 GET_INFO reply as the kernel lays it out: MIGRATION at 24, DMA_AVAIL at 56, IOVA_RANGE at 72.</summary>
    private static byte[] Type1Reply(uint nrIovas = 2, int length = 120, IommuInfoFlags flags = IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps)
    {
        byte[] b = new byte[length];
        new VfioIommuType1Info { Argsz = 120, Flags = flags, IovaPgsizes = 0x40201000, CapOffset = 24 }.Write(b);
        new VfioIommuType1InfoCapMigration { Header = Header(IommuType1InfoCapId.Migration, 56), PgsizeBitmap = 0x1000, MaxDirtyBitmapSize = 1 << 28 }
            .Write(b.AsSpan(24));
        new VfioIommuType1InfoDmaAvail { Header = Header(IommuType1InfoCapId.DmaAvail, 72), Avail = 65535 }.Write(b.AsSpan(56));
        new VfioIommuType1InfoCapIovaRange { Header = Header(IommuType1InfoCapId.IovaRange, 0), NrIovas = nrIovas }.Write(b.AsSpan(72));
        if (length >= 120)
        {
            new VfioIovaRange { Start = 0, End = 0xfedfffff }.Write(b.AsSpan(88));
            new VfioIovaRange { Start = 0xfef00000, End = 0xffffffffffff }.Write(b.AsSpan(104));
        }
        return b;
    }

    [Fact]
    public void Type1Info_KernelLayout_DecodesEveryCapability()
    {
        var reply = VfioIommuType1InfoReply.Decode(Type1Reply());

        Assert.Null(reply.Error);
        Assert.Equal(0x40201000UL, reply.Info.IovaPgsizes);
        Assert.Equal([(0UL, 0xfedfffffUL), (0xfef00000UL, 0xffffffffffffUL)], reply.IovaRanges!.Select(r => (r.Start, r.End)));
        Assert.Equal((0x1000UL, 1UL << 28), (reply.Migration!.Value.PgsizeBitmap, reply.Migration.Value.MaxDirtyBitmapSize));
        Assert.Equal(65535u, reply.DmaAvail);
    }

    [Fact]
    public void Type1Info_WithoutTheCapsFlag_WalksNoChain()
    {
        var reply = VfioIommuType1InfoReply.Decode(Type1Reply(flags: IommuInfoFlags.Pgsizes));

        Assert.Null(reply.Error);
        Assert.Null(reply.IovaRanges);
        Assert.Null(reply.Migration);
        Assert.Null(reply.DmaAvail);
    }

    [Fact]
    public void Type1Info_MoreRangesThanTheReplyHolds_KeepsWhatFitsAndSaysWhere()
    {
        var reply = VfioIommuType1InfoReply.Decode(Type1Reply(nrIovas: 1000));

        Assert.Equal(2, reply.IovaRanges!.Count);
        Assert.Equal("capability at 0x78 does not fit a 0x78-byte reply", reply.Error);
        Assert.Equal(65535u, reply.DmaAvail);
    }

    [Fact]
    public void Type1Info_ShorterThanTheStruct_ReadsThePrefix()
    {
        var reply = VfioIommuType1InfoReply.Decode(Type1Reply()[..16]);

        Assert.Equal(0x40201000UL, reply.Info.IovaPgsizes);
        Assert.NotNull(reply.Error);
    }

    [Fact]
    public void RegionInfo_SparseMmap_DecodesTheAreas()
    {
        byte[] b = new byte[80];
        new VfioRegionInfo { Argsz = 80, Flags = RegionInfoFlags.Read | RegionInfoFlags.Mmap | RegionInfoFlags.Caps, Index = 0, CapOffset = 32, Size = 0x100000 }.Write(b);
        new VfioRegionInfoCapSparseMmap { Header = new VfioInfoCapHeader { Id = (ushort)RegionInfoCapId.SparseMmap, Version = 1 }, NrAreas = 2 }.Write(b.AsSpan(32));
        new VfioRegionSparseMmapArea { Offset = 0, Size = 0x1000 }.Write(b.AsSpan(48));
        new VfioRegionSparseMmapArea { Offset = 0x2000, Size = 0xe000 }.Write(b.AsSpan(64));

        var reply = VfioRegionInfoReply.Decode(b);

        Assert.Null(reply.Error);
        Assert.Equal(0x100000UL, reply.Info.Size);
        Assert.Equal([(0UL, 0x1000UL), (0x2000UL, 0xe000UL)], reply.SparseMmapAreas!.Select(a => (a.Offset, a.Size)));
    }

    [Fact]
    public void HotResetInfo_CountBeyondTheReply_KeepsWhatFits()
    {
        byte[] b = new byte[VfioPciHotResetInfo.SizeOf + (2 * VfioPciDependentDevice.SizeOf)];
        new VfioPciHotResetInfo { Argsz = (uint)b.Length, Count = 3 }.Write(b);
        new VfioPciDependentDevice { GroupId = 1, Bus = 1 }.Write(b.AsSpan(VfioPciHotResetInfo.Offsets.Devices));
        new VfioPciDependentDevice { GroupId = 2, Bus = 1, Devfn = 1 }.Write(b.AsSpan(VfioPciHotResetInfo.Offsets.Devices + VfioPciDependentDevice.SizeOf));

        var reply = VfioPciHotResetInfoReply.Decode(b);

        Assert.Equal([1u, 2u], reply.Devices.Select(d => d.GroupId));
        Assert.Contains("device 2 of 3", reply.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void HotResetInfo_ReplySize_BoundedByAMegabyte()
    {
        Assert.True(VfioPciHotResetInfoReply.TryGetReplySize(2, out int size));
        Assert.Equal(VfioPciHotResetInfo.SizeOf + 16, size);
        Assert.False(VfioPciHotResetInfoReply.TryGetReplySize(uint.MaxValue, out _));
        Assert.False(VfioPciHotResetInfoReply.TryGetReplySize(1 << 17, out _));
    }

    [Fact]
    public void HotReset_WriteGroupFds_CountThenTheFds()
    {
        byte[] arg = new byte[VfioPciHotReset.SizeFor(2)];

        VfioPciHotReset.WriteGroupFds(arg, [5, 9]);

        VfioPciHotReset.TryRead(arg, out VfioPciHotReset head);
        Assert.Equal(2u, head.Count);
        Assert.Equal(5, BitConverter.ToInt32(arg, VfioPciHotReset.Offsets.GroupFds));
        Assert.Equal(9, BitConverter.ToInt32(arg, VfioPciHotReset.Offsets.GroupFds + 4));
        Assert.Throws<ArgumentException>(() => VfioPciHotReset.WriteGroupFds(new byte[12], [1]));
    }
}
