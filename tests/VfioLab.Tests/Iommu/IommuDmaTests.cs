using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Pci;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

public sealed class IommuDmaTests
{
    private readonly PciTopology _topo = new(new ByteRange(1UL << 40, (1UL << 41) - 1));
    private readonly IommuGroup _group = new(1, new IommuUnit(0, IommuHardwareProfile.VtD));
    private readonly IommuFaultLog _log = new();
    private readonly IommuDomain _domain;

    public IommuDmaTests()
    {
        Assert.Equal(Errno.None, _group.TryAllocateDomain(out IommuDomain? d));
        _domain = d!;
        Assert.Equal(Errno.None, _group.Attach(_domain));
    }

    [Fact]
    public void Access_MappedRam_ReturnsPhysRunsNotPages()
    {
        Assert.Equal(Errno.None, _domain.Map(new Iova(0), new PhysAddr(G1), 4 * M2, IommuProt.ReadWrite));
        DmaAccessResult r = IommuDma.Access(_group, "0000:01:00.0", new Iova(0x100), 3 * M2, write: true, _topo, _log);
        Assert.True(r.Ok);
        DmaSegment s = Assert.Single(r.Segments);
        Assert.Equal(new DmaSegment(new Iova(0x100), new PhysAddr(G1 + 0x100), 3 * M2, DmaTargetKind.Ram, null, 0, 0), s);
        Assert.Equal(0, _log.Count);
    }

    [Fact]
    public void Access_CrossesIntoHole_RecordsFaultAtHole()
    {
        Assert.Equal(Errno.None, _domain.Map(new Iova(0), new PhysAddr(G1), K4, IommuProt.ReadWrite));
        DmaAccessResult r = IommuDma.Access(_group, "0000:01:00.0", new Iova(0x800), K4, write: false, _topo, _log);
        Assert.False(r.Ok);
        Assert.Equal(new IommuFault("0000:01:00.0", new Iova(K4), false, IommuFaultReason.NotMapped), r.Fault);
        Assert.Single(r.Segments);
        Assert.Equal([r.Fault!.Value], _log.Snapshot());
    }

    [Fact]
    public void Access_WriteToReadOnly_RecordsWriteDenied()
    {
        Assert.Equal(Errno.None, _domain.Map(new Iova(0), new PhysAddr(G1), K4, IommuProt.Read));
        DmaAccessResult r = IommuDma.Access(_group, "dev", new Iova(0), 8, write: true, _topo, _log);
        Assert.Equal(IommuFaultReason.WriteDenied, r.Fault!.Value.Reason);
    }

    [Fact]
    public void Access_LandsInPeerBar_ReturnsPeerToPeerSegment()
    {
        PciFunction peer = _topo.AddFunction(PciAddress.Parse("0000:02:00.0"), 0x15b3, 0x1017, [new PciBarRequest(0, M2)]);
        PciBar bar = peer.Bars[0];
        // RAM page right below the BAR, then the BAR: one IOVA run, two targets.
        Assert.Equal(Errno.None, _domain.Map(new Iova(G1), new PhysAddr(bar.Base.Value - K4), K4 + M2, IommuProt.ReadWrite));
        DmaAccessResult r = IommuDma.Access(_group, "0000:01:00.0", new Iova(G1), 2 * K4, write: true, _topo, _log);
        Assert.True(r.Ok);
        Assert.Equal(2, r.Segments.Count);
        Assert.Equal(DmaTargetKind.Ram, r.Segments[0].Kind);
        Assert.Equal(K4, r.Segments[0].Size);
        Assert.Equal(DmaTargetKind.PeerToPeer, r.Segments[1].Kind);
        Assert.Same(peer, r.Segments[1].Peer);
        Assert.Equal(0UL, r.Segments[1].BarOffset);
    }

    [Fact]
    public void Access_GroupDetached_RecordsNoDomain()
    {
        _group.Detach();
        DmaAccessResult r = IommuDma.Access(_group, "dev", new Iova(0), 8, write: false, _topo, _log);
        Assert.Equal(IommuFaultReason.NoDomain, r.Fault!.Value.Reason);
        Assert.Equal(1, _log.Count);
    }
}
