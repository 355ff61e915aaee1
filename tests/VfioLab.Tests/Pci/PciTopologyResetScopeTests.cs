using VfioLab.Pci;

namespace VfioLab.Tests.Pci;

public sealed class PciTopologyResetScopeTests
{
    private readonly PciTopology _topo = PciTopology.AboveRam(1UL << 30);

    public PciTopologyResetScopeTests()
    {
        foreach (string a in new[] { "0000:01:00.0", "0000:01:00.1", "0000:01:01.0", "0000:02:00.0" })
        {
            _topo.AddFunction(PciAddress.Parse(a), 1, 1, [new PciBarRequest(0, 0x1000)]);
        }
    }

    private static string[] Names(IReadOnlyList<PciFunction> fs) => [.. fs.Select(f => f.Address.ToString())];

    [Fact]
    public void HotResetScope_Slot_FunctionsOfSameDevice()
    {
        Assert.Equal(["0000:01:00.0", "0000:01:00.1"], Names(_topo.HotResetScope(PciAddress.Parse("0000:01:00.1"))));
    }

    [Fact]
    public void HotResetScope_Bus_AllFunctionsOnBus()
    {
        Assert.Equal(["0000:01:00.0", "0000:01:00.1", "0000:01:01.0"],
            Names(_topo.HotResetScope(PciAddress.Parse("0000:01:00.0"), PciResetScope.Bus)));
    }

    [Fact]
    public void HotReset_Slot_ResetsOnlySlotFunctions()
    {
        foreach (PciFunction f in _topo.Functions)
        {
            f.SetMemoryEnable(true);
        }
        _topo.HotReset(PciAddress.Parse("0000:01:00.0"));
        Assert.Equal([false, false, true, true], _topo.Functions.Select(f => f.MemoryEnabled).ToArray());
    }

    [Fact]
    public void Buses_AndSlots_Distinct()
    {
        Assert.Equal(2, _topo.Buses.Count);
        Assert.Equal(3, _topo.Slots.Count);
    }
}
