using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

/// <summary>IommuDomain.MapChunks: one GUP batch's discontiguous chunks at consecutive IOVAs, each an iommu_map of its
/// own (checks, split, all or nothing), stopping at the first that fails with the ones before it left mapped.</summary>
public sealed class IommuDomainMapChunksTests
{
    [Fact]
    public void MapChunks_ThreeScatteredChunks_MapsEachAtConsecutiveIovas()
    {
        IommuDomain d = Domain(K4 | M2);
        ByteRange[] chunks = [ByteRange.FromStartSize(0x9000, K4), ByteRange.FromStartSize(0x3000, 2 * K4), ByteRange.FromStartSize(4 * M2, M2)];

        Assert.Equal(Errno.None, d.MapChunks(new Iova(M2), chunks, IommuProt.ReadWrite, out int mapped));

        Assert.Equal(3, mapped);
        Assert.Equal(new PhysAddr(0x9000), d.IovaToPhys(new Iova(M2)));
        Assert.Equal(new PhysAddr(0x3000), d.IovaToPhys(new Iova(M2 + K4)));
        Assert.Equal(new PhysAddr(0x4000), d.IovaToPhys(new Iova(M2 + (2 * K4))));
        Assert.Equal(new PhysAddr(4 * M2), d.IovaToPhys(new Iova(M2 + (3 * K4))));
        Assert.Equal(3 + (M2 / K4), d.TotalEntries);
        AssertClean(d);
    }

    [Fact]
    public void MapChunks_MiddleChunkMisaligned_ReturnsEINVALWithTheFirstLeftMapped()
    {
        IommuDomain d = Domain(K64);
        ByteRange[] chunks = [ByteRange.FromStartSize(0x10000, K64), ByteRange.FromStartSize(0x21000, K64), ByteRange.FromStartSize(0x40000, K64)];

        Assert.Equal(Errno.EINVAL, d.MapChunks(new Iova(0x100000), chunks, IommuProt.ReadWrite, out int mapped));

        Assert.Equal(1, mapped);
        Assert.Equal(new PhysAddr(0x10000), d.IovaToPhys(new Iova(0x100000)));
        Assert.Equal(1UL, d.TotalEntries);
        Assert.False(d.Translate(new Iova(0x110000), write: false).Ok);
        AssertClean(d);
    }

    [Fact]
    public void MapChunks_FreedDomain_ReturnsENODEVAndMapsNothing()
    {
        IommuDomain d = Domain(K4);
        d.Free();

        Assert.Equal(Errno.ENODEV, d.MapChunks(new Iova(0), [ByteRange.FromStartSize(0x1000, K4)], IommuProt.Read, out int mapped));

        Assert.Equal(0, mapped);
        Assert.True(d.IsEmpty);
    }
}
