using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class IommuDomainMapTests
{
    [Fact]
    public void Map_BitmapOf4KAnd1GOnly_UsesGigabyteThenSmallPages()
    {
        IommuDomain d = Domain(K4 | G1);
        Assert.Equal(Errno.None, d.Map(new Iova(G1), new PhysAddr(3 * G1), G1 + (2 * M2), IommuProt.ReadWrite));
        Assert.Equal(1UL, d.EntryCount(G1));
        Assert.Equal(2 * M2 / K4, d.EntryCount(K4));
        Assert.Equal(0UL, d.EntryCount(M2));
        AssertClean(d);
    }

    [Fact]
    public void Map_PhysAlignedTo2MButIovaOnlyTo4K_UsesOnly4KPages()
    {
        IommuDomain d = Domain(K4 | M2 | G1);
        Assert.Equal(Errno.None, d.Map(new Iova(M2 + K4), new PhysAddr(4 * M2), 2 * M2, IommuProt.ReadWrite));
        Assert.Equal(2 * M2 / K4, d.EntryCount(K4));
        Assert.Equal(0UL, d.EntryCount(M2));
    }

    [Fact]
    public void Map_IovaNotAlignedTo4K_ReturnsEINVAL()
    {
        IommuDomain d = Domain(K4 | M2 | G1);
        Assert.Equal(Errno.EINVAL, d.Map(new Iova(M2 + 0x800), new PhysAddr(4 * M2), M2, IommuProt.ReadWrite));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void Map_64KHostPageOn4KIommu_Makes16Entries()
    {
        IommuDomain d = Domain(K4);
        Assert.Equal(Errno.None, d.Map(new Iova(0x10000), new PhysAddr(0x7770000), K64, IommuProt.Read));
        Assert.Equal(16UL, d.EntryCount(K4));
        Assert.Equal(16UL, d.TotalEntries);
    }

    [Fact]
    public void Map_AlreadyMapped_ReturnsEEXISTAndKeepsOldEntry()
    {
        IommuDomain d = Domain(K4 | M2);
        Assert.Equal(Errno.None, d.Map(new Iova(0x1000), new PhysAddr(0x5000), K4, IommuProt.ReadWrite));
        Assert.Equal(Errno.EEXIST, d.Map(new Iova(0), new PhysAddr(0x9000), 2 * K4, IommuProt.ReadWrite));
        Assert.Equal(new PhysAddr(0x5000), d.IovaToPhys(new Iova(0x1000)));
        Assert.Equal(1UL, d.TotalEntries);
    }

    [Fact]
    public void Map_BeyondVtdAperture_ReturnsEFAULT()
    {
        IommuDomain d = Domain(IommuHardwareProfile.VtD);
        Assert.Equal(Errno.EFAULT, d.Map(new Iova((1UL << 48) - K4), new PhysAddr(0), 2 * K4, IommuProt.ReadWrite));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void Map_BeyondSmmuInputSize_ReturnsERANGE()
    {
        IommuDomain d = Domain(IommuHardwareProfile.SmmuV3);
        Assert.Equal(Errno.ERANGE, d.Map(new Iova(1UL << 48), new PhysAddr(0), K4, IommuProt.ReadWrite));
    }

    [Fact]
    public void Map_InjectedFailureAtEveryBatch_LeavesTableUnchanged()
    {
        var faults = new FaultInjector();
        IommuDomain d = Domain(K4 | M2 | G1, faults);
        Assert.Equal(Errno.None, d.Map(new Iova(8 * G1), new PhysAddr(8 * G1), K4, IommuProt.Read));
        for (int nth = 1; ; nth++)
        {
            faults.Arm(nth, FaultSite.IommuMap);
            // 4K batch up to 2M, 2M batch up to 1G, 1G batch, 2M batch, 4K tail: five batches.
            Errno e = d.Map(new Iova(G1 - M2 - K4), new PhysAddr(G1 - M2 - K4), K4 + M2 + G1 + M2 + K4, IommuProt.ReadWrite);
            if (!faults.Fired)
            {
                Assert.Equal(Errno.None, e);
                Assert.Equal(6, nth);
                break;
            }
            Assert.Equal(Errno.ENOMEM, e);
            Assert.Equal(1UL, d.TotalEntries);
            Assert.Single(d.MappedRuns());
            AssertClean(d);
        }
        faults.Arm(0);
        AssertClean(d);
        Assert.Equal(1UL, d.EntryCount(G1));
    }

    [Fact]
    public void Map_OneTebibyteOnGigabytePages_IsOneRun()
    {
        IommuDomain d = Domain(IommuHardwareProfile.VtD);
        Assert.Equal(Errno.None, d.Map(new Iova(T1), new PhysAddr(0), T1, IommuProt.ReadWrite));
        Assert.Equal(1024UL, d.EntryCount(G1));
        Assert.Equal(1, d.RunCount);
        Assert.Equal(new PhysAddr(T1 / 2 + 0x123000), d.IovaToPhys(new Iova(T1 + T1 / 2 + 0x123000)));
        Assert.Equal(T1, d.Unmap(new Iova(T1), T1));
        Assert.True(d.IsEmpty);
        Assert.Equal(0UL, d.TotalEntries);
    }
}
