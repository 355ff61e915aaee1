using VfioLab.Pci;

namespace VfioLab.Tests.Pci;

public sealed class PciFunctionCommandTests
{
    private readonly PciFunction _f = PciTopology.AboveRam(1UL << 30)
        .AddFunction(PciAddress.Parse("0000:01:00.0"), 0x8086, 0x1572, [new PciBarRequest(0, 1UL << 20)]);

    [Fact]
    public void TryReadBar_MemoryDisabled_ReturnsAllOnesAndFalse()
    {
        Span<byte> buf = stackalloc byte[4];
        Assert.False(_f.MemoryEnabled);
        Assert.False(_f.TryReadBar(0, 0x10, buf));
        Assert.Equal([0xff, 0xff, 0xff, 0xff], buf.ToArray());
        Assert.False(_f.TryWriteBar(0, 0x10, [1, 2, 3, 4]));
    }

    [Fact]
    public void TryWriteBar_MemoryEnabled_ReadsBackSparseContents()
    {
        _f.SetMemoryEnable(true);
        Assert.True(_f.TryWriteBar(0, 0xffe, [1, 2, 3, 4]));
        Span<byte> buf = stackalloc byte[6];
        Assert.True(_f.TryReadBar(0, 0xffd, buf));
        Assert.Equal([0, 1, 2, 3, 4, 0], buf.ToArray());
        Assert.Equal(2, _f.Bars[0].MaterialisedChunks);
    }

    [Fact]
    public void WriteConfig_CommandRegister_GatesDecode()
    {
        _f.WriteConfig(PciFunction.CommandOffset, [0x06, 0x00]);
        Assert.Equal(PciCommand.Memory | PciCommand.Master, _f.Command);
        Assert.True(_f.DecodesMemory);
        _f.SetMemoryEnable(false);
        Assert.False(_f.DecodesMemory);
        Assert.True(_f.BusMasterEnabled);
    }

    [Fact]
    public void ReadConfig_Ids_MatchVendorAndDevice()
    {
        Span<byte> ids = stackalloc byte[4];
        _f.ReadConfig(0, ids);
        Assert.Equal([0x86, 0x80, 0x72, 0x15], ids.ToArray());
        Span<byte> bar0 = stackalloc byte[4];
        _f.ReadConfig(PciFunction.Bar0Offset, bar0);
        Assert.Equal((uint)(_f.Bars[0].Base.Value & 0xfffffff0) | 0x4u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bar0));
    }
}

public sealed class PciFunctionResetTests
{
    private readonly PciFunction _f = PciTopology.AboveRam(1UL << 30)
        .AddFunction(PciAddress.Parse("0000:01:00.0"), 0x8086, 0x1572, [new PciBarRequest(0, 1UL << 20)]);

    [Fact]
    public void FunctionReset_MemoryEnabled_ClearsCommandRegister()
    {
        _f.WriteCommand(PciCommand.Memory | PciCommand.Master);
        _f.FunctionReset();
        Assert.Equal(PciCommand.None, _f.Command);
        Assert.False(_f.DecodesMemory);
        Assert.Equal(1, _f.ResetCount);
    }

    [Fact]
    public void BeginReset_DuringReset_BarDoesNotDecode()
    {
        _f.SetMemoryEnable(true);
        _f.BeginReset();
        Assert.True(_f.InReset);
        Assert.False(_f.DecodesMemory);
        _f.EndReset();
        Assert.False(_f.InReset);
    }

    [Fact]
    public void RestoreState_AfterReset_MemoryEnabledAgain()
    {
        _f.SetMemoryEnable(true);
        PciSavedState saved = _f.SaveState();
        _f.FunctionReset();
        _f.RestoreState(saved);
        Assert.True(_f.DecodesMemory);
    }
}
