using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Tests.Client;

/// <summary>The client reads replies defensively: a kernel (here a fake one) whose capability chain loops or points
/// outside the reply gets a <see cref="VfioException"/>, never a crash or a hang.</summary>
public sealed class MaliciousReplyTests
{
    /// <summary>A surface whose only container answers IOMMU_GET_INFO with a 64-byte reply holding <c>chain</c>.</summary>
    private sealed class FakeKernel(Action<Span<byte>> chain) : ISyscallSurface
    {
        public int Pid => 1;

        public int Open(string path) => 3;

        public int Close(int fd) => 0;

        public long Ioctl(int fd, uint request, ulong value) => request == VfioIoctl.GetApiVersion ? 0 : Errno.ENOTTY.AsReturn();

        public long Ioctl(int fd, uint request, Span<byte> arg)
        {
            if (request != VfioIoctl.IommuGetInfo)
            {
                return Errno.ENOTTY.AsReturn();
            }
            var info = new VfioIommuType1Info { Argsz = 64, Flags = IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps, IovaPgsizes = 0x1000 };
            if (arg.Length >= 64)
            {
                info.CapOffset = 24;
                chain(arg);
            }
            info.Write(arg);
            return 0;
        }

        public long Pread(int fd, Span<byte> destination, ulong offset) => Errno.EINVAL.AsReturn();

        public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset) => Errno.EINVAL.AsReturn();

        public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset) => Errno.ENOMEM.AsReturn();

        public int Munmap(ulong address, ulong length) => 0;

        public int ReadMemory(ulong address, Span<byte> destination) => (int)Errno.EFAULT.AsReturn();

        public int WriteMemory(ulong address, ReadOnlySpan<byte> source) => (int)Errno.EFAULT.AsReturn();

        public ISyscallSurface Fork() => throw new NotSupportedException();

        public void Exit()
        {
        }
    }

    private static VfioException GetInfoFails(Action<Span<byte>> chain)
    {
        using var container = Container.Open(new FakeKernel(chain));
        return Assert.Throws<VfioException>(container.GetIommuInfo);
    }

    [Fact]
    public void GetIommuInfo_ChainLoops_ThrowsInsteadOfSpinning()
    {
        VfioException e = GetInfoFails(b =>
        {
            new VfioInfoCapHeader { Id = 3, Version = 1, Next = 40 }.Write(b[24..]);
            new VfioInfoCapHeader { Id = 1, Version = 1, Next = 24 }.Write(b[40..]);
        });

        Assert.Equal(Errno.None, e.Errno);
        Assert.Contains("iommu_get_info fd 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("malformed capability chain", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetIommuInfo_HeaderPastTheReply_Throws()
    {
        VfioException e = GetInfoFails(b => new VfioInfoCapHeader { Id = 3, Version = 1, Next = 60 }.Write(b[24..]));

        Assert.Contains("header at 0x3c in a 0x40-byte reply", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetIommuInfo_CapabilityPastTheReply_Throws()
    {
        // A MIGRATION capability (32 bytes) whose header sits 16 bytes before the end of the reply.
        VfioException e = GetInfoFails(b =>
        {
            new VfioInfoCapHeader { Id = 3, Version = 1, Next = 48 }.Write(b[24..]);
            new VfioInfoCapHeader { Id = (ushort)IommuType1InfoCapId.Migration, Version = 1 }.Write(b[48..]);
        });

        Assert.Contains("capability at 0x30 does not fit a 0x40-byte reply", e.Message, StringComparison.Ordinal);
    }
}
