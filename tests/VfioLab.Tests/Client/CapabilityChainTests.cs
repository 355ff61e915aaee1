using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Tests.Client;

/// <summary>The client walks a capability chain defensively: a reply it cannot trust is an error, never a crash or a loop.</summary>
public sealed class CapabilityChainTests
{
    private static byte[] Chain(params (int Offset, ushort Id, uint Next)[] headers)
    {
        byte[] buffer = new byte[64];
        foreach ((int offset, ushort id, uint next) in headers)
        {
            new VfioInfoCapHeader { Id = id, Version = 1, Next = next }.Write(buffer.AsSpan(offset));
        }
        return buffer;
    }

    [Fact]
    public void Walk_TwoHeaders_ReturnsBothInOrder()
    {
        byte[] buffer = Chain((24, 3, 40), (40, 1, 0));
        var caps = CapabilityChain.Walk(buffer, 24, "t");
        Assert.Equal([(24, (ushort)3), (40, (ushort)1)], caps.Select(c => (c.Offset, c.Header.Id)));
    }

    [Fact]
    public void Walk_Loop_ThrowsInsteadOfSpinning()
    {
        byte[] buffer = Chain((24, 3, 40), (40, 1, 24));
        VfioException e = Assert.Throws<VfioException>(() => CapabilityChain.Walk(buffer, 24, "iommu_get_info fd 3"));
        Assert.Contains("malformed capability chain", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Walk_HeaderPastTheReply_Throws()
    {
        byte[] buffer = Chain((24, 3, 60));
        VfioException e = Assert.Throws<VfioException>(() => CapabilityChain.Walk(buffer, 24, "t"));
        Assert.Contains("0x3c", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_StructPastTheReply_Throws()
    {
        byte[] buffer = new byte[40];
        Assert.Throws<VfioException>(() => CapabilityChain.Read<VfioIommuType1InfoCapMigration>(buffer, 16, "t"));
        Assert.Throws<VfioException>(() => CapabilityChain.Read<VfioIovaRange>(buffer, -8, "t"));
    }
}
