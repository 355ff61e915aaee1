using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>dup: the lowest free fd sharing the open file; EBADF for an fd that is not open, EMFILE when the
/// table is full; the file is released only when its last fd closes.</summary>
public sealed class DupTests
{
    private static (Process Process, FakeBarFile Bar) Setup()
    {
        Machine m = NewMachine();
        FakeBarFile bar = RegisterBar(m);
        return (m.Spawn("p"), bar);
    }

    [Fact]
    public void Dup_OpenFd_ReturnsLowestFreeFdSharingTheFile()
    {
        (Process p, FakeBarFile bar) = Setup();
        int fd = p.Syscalls.Open("/dev/bar");
        Assert.Equal(0, p.Syscalls.Close(1));

        Assert.Equal(1, p.Syscalls.Dup(fd));

        Assert.Equal(5, p.Syscalls.Ioctl(1, 2, 5UL));
        Assert.Equal(0, p.Syscalls.Close(fd));
        Assert.Equal(0, bar.Releases);
        Assert.Equal(0, p.Syscalls.Close(1));
        Assert.Equal(1, bar.Releases);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3)]
    [InlineData(FdTable.MaxFds)]
    public void Dup_FdNotOpen_ReturnsEBADF(int fd)
    {
        (Process p, _) = Setup();

        Assert.Equal(-(int)Errno.EBADF, p.Syscalls.Dup(fd));

        Assert.Equal([0, 1, 2], p.Fds.Snapshot());
    }

    [Fact]
    public void Dup_TableFull_ReturnsEMFILE()
    {
        (Process p, _) = Setup();
        for (int fd = FdTable.StandardStreams; fd < FdTable.MaxFds; fd++)
        {
            Assert.Equal(fd, p.Syscalls.Dup(0));
        }

        Assert.Equal(-(int)Errno.EMFILE, p.Syscalls.Dup(0));

        Assert.Equal(FdTable.MaxFds, p.Fds.Count);
        Assert.True(p.Fds.TryGet(0, out OpenFile stdio));
        stdio.Put();
        Assert.Equal(FdTable.MaxFds, stdio.RefCount);
    }

    [Fact]
    public void Dup_ExitedProcess_ReturnsESRCH()
    {
        (Process p, _) = Setup();
        p.Exit();

        Assert.Equal(-(int)Errno.ESRCH, p.Syscalls.Dup(0));

        Assert.Equal(0, p.Fds.Count);
    }
}
