using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>The /proc readers the mirror is built from, on text as the kernel prints it.</summary>
public sealed class ProcFilesTests
{
    private const string Smaps = """
        55d4c0a00000-55d4c0a21000 rw-p 00000000 00:00 0                          [heap]
        Size:                132 kB
        KernelPageSize:        4 kB
        7f0000000000-7f0040000000 rw-s 00000000 00:0f 1234                       /anon_hugepage (deleted)
        Size:            1048576 kB
        KernelPageSize:  1048576 kB
        7f1000000000-7f1000400000 rw-s 00000000 00:01 99                         /memfd:guest-ram (deleted)
        KernelPageSize:     2048 kB
        7f2000000000-7f2000001000 r-xp 00001000 08:01 4242                       /usr/lib/libc.so.6
        KernelPageSize:        4 kB
        7f3000000000-7f3000002000 ---p 00000000 00:00 0
        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
        """;

    [Fact]
    public void ParseSmaps_ReadsKindsProtectionsAndHugePageSizes()
    {
        List<RealMapping> maps = ProcFiles.ParseSmaps(Smaps);
        Assert.Equal(6, maps.Count);
        Assert.Equal(("anonymous", true, true, false), (maps[0].Kind, maps[0].Read, maps[0].Write, maps[0].Shared));
        Assert.Equal(0x55d4c0a00000UL, maps[0].Start);
        Assert.Equal(0x55d4c0a21000UL, maps[0].End);
        Assert.Equal("hugetlb-1g", maps[1].Kind);
        Assert.True(maps[1].Shared);
        Assert.Equal("hugetlb-2m", maps[2].Kind);
        Assert.Equal("file", maps[3].Kind);
        Assert.True(maps[3].Exec);
        Assert.False(maps[3].Write);
        Assert.Equal(("anonymous", false), (maps[4].Kind, maps[4].Read));
        Assert.Equal(0xffffffffff600000UL, maps[5].Start);
    }

    [Theory]
    [InlineData("Max locked memory         8388608              8388608              bytes     \n", 8388608UL)]
    [InlineData("Max locked memory         unlimited            unlimited            bytes     \n", ulong.MaxValue)]
    public void ParseMemlock_ReadsTheSoftLimit(string line, ulong expected)
    {
        string limits = "Limit                     Soft Limit           Hard Limit           Units     \n" + line;
        Assert.Equal(expected, ProcFiles.ParseMemlock(limits));
    }

    [Theory]
    [InlineData("CapEff:\t000001ffffffffff\n", true)]
    [InlineData("CapEff:\t0000000000000000\n", false)]
    [InlineData("CapEff:\t0000000000004000\n", true)]
    [InlineData("CapEff:\t0000000000003fff\n", false)]
    public void ParseCapIpcLock_IsBit14OfCapEff(string status, bool expected) =>
        Assert.Equal(expected, ProcFiles.ParseCapIpcLock("Name:\tqemu\nPPid:\t42\n" + status));

    [Theory]
    [InlineData("socket:[123456]", 123456UL)]
    [InlineData("anon_inode:[eventfd]", null)]
    [InlineData("/dev/null", null)]
    [InlineData("socket:[]", null)]
    public void SocketInode_OnlyForSockets(string target, ulong? expected) => Assert.Equal(expected, ProcFiles.SocketInode(target));
}
