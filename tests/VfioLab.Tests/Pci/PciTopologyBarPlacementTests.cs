using VfioLab.Addressing;
using VfioLab.Pci;

namespace VfioLab.Tests.Pci;

public sealed class PciTopologyBarPlacementTests
{
    private const ulong M16 = 16UL << 20;
    private const ulong G128 = 128UL << 30;

    [Fact]
    public void AddFunction_TwoBars_NaturallyAlignedInsideWindow()
    {
        PciTopology topo = PciTopology.AboveRam(64UL << 30);
        PciFunction gpu = topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 0x10de, 0x2330,
            [new PciBarRequest(0, M16, Is64Bit: false), new PciBarRequest(1, G128, Prefetchable: true)]);
        Assert.Equal(2, gpu.Bars.Count);
        foreach (PciBar bar in gpu.Bars)
        {
            Assert.True(bar.Base.IsAligned(bar.Size));
            Assert.True(topo.MmioWindow.Contains(bar.PhysRange));
            Assert.True(bar.Base.Value >= 64UL << 30, "MMIO must lie above RAM");
        }
        Assert.False(gpu.Bars[0].PhysRange.Overlaps(gpu.Bars[1].PhysRange));
        Assert.True(gpu.Bar(1)!.Prefetchable);
    }

    [Fact]
    public void AddFunction_SecondFunction_BarsDoNotOverlapFirst()
    {
        PciTopology topo = PciTopology.AboveRam(1UL << 30);
        PciFunction a = topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 1, 1, [new PciBarRequest(0, 0x1000)]);
        PciFunction b = topo.AddFunction(PciAddress.Parse("0000:02:00.0"), 1, 1, [new PciBarRequest(0, M16)]);
        Assert.False(a.Bars[0].PhysRange.Overlaps(b.Bars[0].PhysRange));
        Assert.True(b.Bars[0].Base.IsAligned(M16));
    }

    [Fact]
    public void TryFindBar_AddressInsideBar_ReturnsFunctionAndBar()
    {
        PciTopology topo = PciTopology.AboveRam(1UL << 30);
        PciFunction f = topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 1, 1, [new PciBarRequest(2, M16)]);
        PciBar bar = f.Bars[0];
        Assert.True(topo.TryFindBar(bar.Base.Plus(0x1234), out PciFunction? found, out PciBar? foundBar));
        Assert.Same(f, found);
        Assert.Same(bar, foundBar);
        Assert.False(topo.TryFindBar(new PhysAddr(0x1000), out _, out _));
    }

    [Fact]
    public void RemoveFunction_Unplugged_BarNoLongerFound()
    {
        PciTopology topo = PciTopology.AboveRam(1UL << 30);
        PciFunction f = topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 1, 1, [new PciBarRequest(0, M16)]);
        Assert.True(topo.RemoveFunction(f.Address));
        Assert.False(topo.TryFindBar(f.Bars[0].Base, out _, out _));
        Assert.False(topo.TryGetFunction(f.Address, out _));
    }

    [Fact]
    public void AddFunction_SizeNotPowerOfTwo_Throws()
    {
        PciTopology topo = PciTopology.AboveRam(1UL << 30);
        Assert.Throws<ArgumentException>(() => topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 1, 1, [new PciBarRequest(0, 0x3000)]));
    }
}
