using VfioLab.Abi;
using VfioLab.Linux;

namespace VfioLab.Tests.Linux;

/// <summary>eventfd(2) through <see cref="EventFd"/> and <see cref="LinuxSyscalls.CreateEventFd"/>, against this
/// machine's kernel: a fresh eventfd reads EAGAIN and is not readable to poll; a bad fd is EBADF; the surface's Exit closes
/// it with the other fds.</summary>
public sealed class EventFdTests
{
    [Fact]
    public void Read_FreshEventFd_ReturnsMinusEAGAINAndPollSeesNothing()
    {
        var sys = new LinuxSyscalls();
        int fd = sys.CreateEventFd();
        Assert.True(fd >= 0, $"eventfd: {fd}");
        try
        {
            Assert.Equal(Errno.EAGAIN.AsReturn(), EventFd.Read(fd));
            Assert.False(EventFd.WaitSignalled(fd, TimeSpan.Zero));
        }
        finally
        {
            Assert.Equal(0, sys.Close(fd));
        }
    }

    [Fact]
    public void Read_BadFd_ReturnsMinusEBADF()
    {
        Assert.Equal(Errno.EBADF.AsReturn(), EventFd.Read(-1));
        Assert.False(EventFd.WaitSignalled(-1, TimeSpan.Zero));
    }

    [Fact]
    public void Exit_ClosesTheEventFdsItMade()
    {
        var sys = new LinuxSyscalls();
        int fd = sys.CreateEventFd();
        Assert.True(fd >= 0);

        sys.Exit();

        // The number may already be another test's file (tests run in parallel), but never an eventfd: only this class
        // makes them, one test at a time.
        var link = new FileInfo($"/proc/self/fd/{fd}");
        Assert.True(!link.Exists || link.LinkTarget != "anon_inode:[eventfd]", $"fd {fd} is still an eventfd after Exit");
    }
}
