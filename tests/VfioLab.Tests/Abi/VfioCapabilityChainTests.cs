using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>The one capability-chain walker: every chain the kernel builds reads whole; a reply that breaks the
/// kernel's rules stops the walk at the first bad header, with the headers before it kept, and never loops.</summary>
public sealed class VfioCapabilityChainTests
{
    private const int InfoSize = 24;

    private static byte[] Chain(int length, params (int Offset, ushort Id, uint Next)[] headers)
    {
        byte[] buffer = new byte[length];
        foreach ((int offset, ushort id, uint next) in headers)
        {
            new VfioInfoCapHeader { Id = id, Version = 1, Next = next }.Write(buffer.AsSpan(offset));
        }
        return buffer;
    }

    private static (int, ushort)[] Walked(VfioCapabilityChain chain) => [.. chain.Capabilities.Select(c => (c.Offset, c.Header.Id))];

    [Fact]
    public void Walk_TwoHeaders_ReturnsBothInOrder()
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (24, 3, 40), (40, 1, 0)), 24, InfoSize);

        Assert.Null(chain.Error);
        Assert.Equal([(24, (ushort)3), (40, (ushort)1)], Walked(chain));
    }

    [Fact]
    public void Walk_NoChain_IsEmpty()
    {
        var chain = VfioCapabilityChain.Walk(new byte[24], 0, InfoSize);

        Assert.Null(chain.Error);
        Assert.Empty(chain.Capabilities);
    }

    [Fact]
    public void Walk_LoopBackToTheFirst_StopsWithTheHeadersBefore()
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (24, 3, 40), (40, 1, 24)), 24, InfoSize);

        Assert.Equal([(24, (ushort)3), (40, (ushort)1)], Walked(chain));
        Assert.Contains("malformed capability chain: next 0x18 of the header at 0x28 does not point past it", chain.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(24u)] // itself
    [InlineData(28u)] // into its own header
    public void Walk_NextAtItselfOrIntoItsHeader_Stops(uint next)
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (24, 3, next)), 24, InfoSize);

        Assert.Single(chain.Capabilities);
        Assert.StartsWith("malformed capability chain", chain.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Walk_FirstHeaderInsideTheInfoStruct_Stops()
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (8, 3, 0)), 8, InfoSize);

        Assert.Empty(chain.Capabilities);
        Assert.Contains("inside the 0x18-byte info struct", chain.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(60u)]         // a header that would end past the reply
    [InlineData(0xffffffffu)] // far out
    public void Walk_HeaderPastTheReply_Stops(uint next)
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (24, 3, next)), 24, InfoSize);

        Assert.Single(chain.Capabilities);
        Assert.Equal($"malformed capability chain: header at 0x{next:x} in a 0x40-byte reply", chain.Error);
    }

    [Fact]
    public void Walk_ReplyShorterThanAHeader_Stops()
    {
        var chain = VfioCapabilityChain.Walk(new byte[4], 24, InfoSize);

        Assert.Empty(chain.Capabilities);
        Assert.NotNull(chain.Error);
    }

    [Fact]
    public void Walk_DenseChainThroughAMegabyte_IsBoundedByTheReplyLength()
    {
        const int length = 1 << 20;
        byte[] buffer = new byte[length];
        for (int at = InfoSize; at + 8 <= length; at += 8)
        {
            uint next = at + 16 <= length ? (uint)(at + 8) : 0;
            new VfioInfoCapHeader { Id = 1, Next = next }.Write(buffer.AsSpan(at));
        }

        var chain = VfioCapabilityChain.Walk(buffer, InfoSize, InfoSize);

        Assert.Null(chain.Error);
        Assert.Equal((length - InfoSize) / 8, chain.Capabilities.Count);
    }

    [Fact]
    public void TryFind_TwoOfOneId_TakesTheFirst()
    {
        var chain = VfioCapabilityChain.Walk(Chain(64, (24, 3, 32), (32, 3, 0)), 24, InfoSize);

        Assert.True(chain.TryFind(3, out VfioCapability found));
        Assert.Equal(24, found.Offset);
        Assert.False(chain.TryFind(2, out _));
    }

    [Fact]
    public void TryReadAt_StructPastTheReplyOrNegative_IsFalse()
    {
        byte[] buffer = new byte[40];

        Assert.False(VfioCapabilityChain.TryReadAt(buffer, 16, out VfioIommuType1InfoCapMigration _));
        Assert.False(VfioCapabilityChain.TryReadAt(buffer, -8, out VfioIovaRange _));
        Assert.False(VfioCapabilityChain.TryReadAt(buffer, 41, out VfioIovaRange _));
        Assert.True(VfioCapabilityChain.TryReadAt(buffer, 24, out VfioIovaRange _));
    }
}
