using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class IommuDomainTranslateTests
{
    [Fact]
    public void IovaToPhys_Hole_ReturnsZero()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(new PhysAddr(0), d.IovaToPhys(new Iova(0x1000)));
    }

    [Fact]
    public void IovaToPhys_MappingOfPhysZero_IndistinguishableFromHole()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(M2), new PhysAddr(0), K4, IommuProt.ReadWrite));
        Assert.Equal(new PhysAddr(0), d.IovaToPhys(new Iova(M2)));
        Assert.True(d.Translate(new Iova(M2), write: false).Ok);
    }

    [Fact]
    public void IovaToPhys_InsideSuperpage_AddsOffset()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(M2), new PhysAddr(8 * M2), M2, IommuProt.ReadWrite));
        Assert.Equal(new PhysAddr((8 * M2) + 0x1234), d.IovaToPhys(new Iova(M2 + 0x1234)));
    }

    [Fact]
    public void Translate_WriteToReadOnly_ReturnsWriteDenied()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x10000), K4, IommuProt.Read));
        Assert.Equal(IommuFaultReason.WriteDenied, d.Translate(new Iova(0x10), write: true).Fault);
        Assert.True(d.Translate(new Iova(0x10), write: false).Ok);
    }

    [Fact]
    public void Translate_Mapped_ReportsContiguousBytesToRunEnd()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x10000), 4 * K4, IommuProt.ReadWrite));
        IommuTranslation t = d.Translate(new Iova(K4 + 0x10), write: true);
        Assert.Equal(new PhysAddr(0x11010), t.Phys);
        Assert.Equal((3 * K4) - 0x10, t.ContiguousBytes);
        Assert.Equal(IommuFaultReason.NotMapped, d.Translate(new Iova(4 * K4), write: false).Fault);
    }
}

public sealed class IommuDomainEntryCountTests
{
    [Fact]
    public void EntryCounts_MixedSizes_MatchPerSize()
    {
        IommuDomain d = Domain(K4 | M2 | G1);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0), G1 + M2 + K4, IommuProt.ReadWrite));
        Assert.Equal([new(K4, 1UL), new(M2, 1UL), new(G1, 1UL)], d.EntryCounts());
        Assert.Equal(3UL, d.TotalEntries);
        d.Unmap(new Iova(G1), M2);
        Assert.Equal([new(K4, 1UL), new(G1, 1UL)], d.EntryCounts());
        AssertClean(d);
    }

    [Fact]
    public void MappedRuns_ContiguousSameSize_Merged()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0), new PhysAddr(0x10000), K4, IommuProt.ReadWrite));
        Assert.Equal(Errno.None, d.Map(new Iova(K4), new PhysAddr(0x11000), K4, IommuProt.ReadWrite));
        MappedRun run = Assert.Single(d.MappedRuns());
        Assert.Equal(new ByteRange(0, (2 * K4) - 1), run.Iova);
        Assert.Equal(2UL, run.EntryCount);
    }
}
