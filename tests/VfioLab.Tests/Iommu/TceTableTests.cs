using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;

namespace VfioLab.Tests.Iommu;

/// <summary>The IODA2 table rules and TCE translation of the Iommu layer.</summary>
public sealed class TceTableTests
{
    [Theory]
    [InlineData(12, 1UL << 31, 1, 16, 8UL << 20)]   // the default window: 4 MiB of TCEs, twice
    [InlineData(12, 1UL << 31, 1, 12, 8UL << 20)]
    [InlineData(16, 1UL << 30, 1, 16, 256UL << 10)]  // 16384 TCEs = 128 KiB, twice
    [InlineData(16, 1UL << 20, 1, 16, 128UL << 10)]  // never below one host page per level
    [InlineData(16, 3UL << 30, 1, 16, 0UL)]          // not a power of two
    [InlineData(16, 1UL << 30, 0, 16, 0UL)]
    [InlineData(16, 1UL << 30, 6, 16, 0UL)]
    public void GetTableSize_Geometry_MatchesIoda2(int pageShift, ulong window, int levels, int hostShift, ulong expected) =>
        Assert.Equal(expected, TceTableGroup.GetTableSize(pageShift, window, levels, hostShift));

    [Fact]
    public void CreateTable_SlotOne_StartsAtTheBypassBase()
    {
        var pe = new TceTableGroup(new ByteRange(0, (2UL << 30) - 1), PageSizeBitmap.Size4K | PageSizeBitmap.Size64K, new FaultInjector());
        Assert.Equal(Errno.None, pe.CreateTable(1, 16, 1UL << 30, 1, 16, 0, out TceTable? t));
        Assert.Equal(TceTableGroup.BypassBase, t!.Window.Start);
        Assert.Equal(16384UL, t.Size);
    }

    [Fact]
    public void CreateTable_TooDeep_ReturnsEINVAL()
    {
        var pe = new TceTableGroup(new ByteRange(0, (2UL << 30) - 1), PageSizeBitmap.Size4K, new FaultInjector());
        Assert.Equal(Errno.EINVAL, pe.CreateTable(1, 12, 1UL << 62, 5, 16, 0, out TceTable? t));
        Assert.Null(t);
    }

    [Fact]
    public void Translate_ThroughAWindow_FollowsTheRunAndDirection()
    {
        var pe = new TceTableGroup(new ByteRange(0, (2UL << 30) - 1), PageSizeBitmap.Size4K, new FaultInjector());
        Assert.Equal(IommuFaultReason.NoDomain, pe.Translate(new Iova(0), write: false).Fault);
        pe.TakeOwnership();
        Assert.Equal(Errno.None, pe.CreateTable(0, 12, 1UL << 31, 1, 12, 0, out TceTable? t));
        Assert.Equal(Errno.None, pe.SetWindow(0, t!));
        t!.Exchange(16, 4, new TceEntryRun(0x100000, 0x7000_0000, 12, IommuProt.Read, 1), []);
        IommuTranslation x = pe.Translate(new Iova(0x11234), write: false);
        Assert.True(x.Ok);
        Assert.Equal(0x101234UL, x.Phys.Value);
        Assert.Equal(0x3000UL - 0x234, x.ContiguousBytes);
        Assert.Equal(IommuFaultReason.WriteDenied, pe.Translate(new Iova(0x11234), write: true).Fault);
        Assert.Equal(IommuFaultReason.NotMapped, pe.Translate(new Iova(0x14000), write: false).Fault);
        pe.ReleaseOwnership();
        Assert.Equal(IommuFaultReason.NoDomain, pe.Translate(new Iova(0x11234), write: false).Fault);
    }
}
