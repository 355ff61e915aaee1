using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class IommuDomainUnmapTests
{
    [Fact]
    public void Unmap_InsideSuperpage_RemovesWholeSuperpageAndReturnsItsSize()
    {
        IommuDomain d = Domain(K4 | M2 | G1);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(G1), 2 * M2, IommuProt.ReadWrite));
        Assert.Equal(M2, d.Unmap(new Iova(M2 + (5 * K4)), K4));
        Assert.Equal(new PhysAddr(0), d.IovaToPhys(new Iova(M2)));
        Assert.Equal(new PhysAddr(G1), d.IovaToPhys(new Iova(0)));
        Assert.Equal(1UL, d.EntryCount(M2));
        AssertClean(d);
    }

    [Fact]
    public void Unmap_RangeSpanningSmallAndLargePages_CountsWholeEntries()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(M2 - K4), new PhysAddr(M2 - K4), M2 + K4, IommuProt.ReadWrite));
        Assert.Equal(M2 + K4, d.Unmap(new Iova(M2 - K4), 2 * K4));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void Unmap_StartsAtHole_ReturnsZero()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(M2), new PhysAddr(0), M2, IommuProt.ReadWrite));
        Assert.Equal(0UL, d.Unmap(new Iova(0), 2 * M2));
        Assert.Equal(1UL, d.TotalEntries);
    }

    [Fact]
    public void Unmap_HoleInMiddle_StopsAtHole()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x100000), K4, IommuProt.ReadWrite));
        Assert.Equal(Errno.None, d.Map(new Iova(2 * K4), new PhysAddr(0x200000), K4, IommuProt.ReadWrite));
        Assert.Equal(K4, d.Unmap(new Iova(0), 3 * K4));
        Assert.Equal(1UL, d.TotalEntries);
    }

    [Fact]
    public void Unmap_MisalignedToMinimum_ReturnsZero()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x100000), K4, IommuProt.ReadWrite));
        Assert.Equal(0UL, d.Unmap(new Iova(0), 0x800));
        Assert.Equal(1UL, d.TotalEntries);
    }
}

public sealed class IommuDomainDeferredUnmapTests
{
    [Fact]
    public void UnmapDeferred_BeforeSync_PhysRangePendingInvalidation()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(4 * M2), M2, IommuProt.ReadWrite));
        Assert.Equal(M2, d.UnmapDeferred(new Iova(0), M2));
        Assert.True(d.HasPendingInvalidation(new PhysAddr(4 * M2 + K4), K4));
        Assert.False(d.HasPendingInvalidation(new PhysAddr(5 * M2), K4));
        Assert.Equal([new ByteRange(4 * M2, (5 * M2) - 1)], d.PendingInvalidations());
    }

    [Fact]
    public void IotlbSync_AfterDeferredUnmap_NothingPending()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(4 * M2), M2, IommuProt.ReadWrite));
        d.UnmapDeferred(new Iova(0), M2);
        d.IotlbSync();
        Assert.Empty(d.PendingInvalidations());
        Assert.Equal(1, d.IotlbSyncCount);
    }

    [Fact]
    public void Unmap_Synchronous_LeavesNothingPending()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x100000), K4, IommuProt.ReadWrite));
        d.Unmap(new Iova(0), K4);
        Assert.Empty(d.PendingInvalidations());
    }
}
