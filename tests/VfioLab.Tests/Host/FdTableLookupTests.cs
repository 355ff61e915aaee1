using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>fget without a lock (<see cref="FdTable.TryGet"/>): a reference only from a live file, every fd found
/// after the table grew, EBADF for a closed fd, and a close racing the system calls that use the fd never hands out a
/// released file.</summary>
public sealed class FdTableLookupTests
{
    private static (Process Process, FakeBarFile Bar) Setup()
    {
        Machine m = NewMachine();
        FakeBarFile bar = RegisterBar(m);
        return (m.Spawn("p"), bar);
    }

    [Fact]
    public void TryGet_ReleasedFile_ReturnsFalseAndTakesNoReference()
    {
        var file = new OpenFile(NullFile.Path, NullFile.Instance);
        Assert.True(file.TryGet());
        Assert.Equal(2, file.RefCount);
        file.Put();
        file.Put();

        Assert.False(file.TryGet());

        Assert.Equal(0, file.RefCount);
        Assert.True(file.IsReleased);
    }

    [Fact]
    public void TryGet_AfterTheTableGrew_FindsEveryFdWithItsFile()
    {
        (Process p, FakeBarFile bar) = Setup();
        int first = p.Syscalls.Open("/dev/bar");
        var fds = new List<int> { first };
        for (int i = 0; i < 40; i++)
        {
            fds.Add(p.Syscalls.Dup(first));
        }
        Assert.Equal(Enumerable.Range(first, 41), fds);

        Assert.True(p.Fds.TryGet(first, out OpenFile file));
        Assert.Equal(42, file.RefCount); // 41 fds and this lookup
        file.Put();
        foreach (int fd in fds)
        {
            Assert.True(p.Fds.TryGet(fd, out OpenFile f));
            Assert.Same(file, f);
            f.Put();
        }
        Assert.Equal(41, file.RefCount);
        Assert.Equal(0, bar.Releases);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    [InlineData(FdTable.MaxFds)]
    [InlineData(int.MaxValue)]
    public void TryGet_FdNeverOpened_ReturnsFalse(int fd)
    {
        (Process p, _) = Setup();
        Assert.Equal(3, p.Syscalls.Open("/dev/bar"));

        Assert.False(p.Fds.TryGet(fd, out _));

        Assert.Equal(Errno.EBADF.AsReturn(), p.Syscalls.Ioctl(fd, 2, 5UL));
    }

    [Fact]
    public void TryGet_ClosedFd_ReturnsFalse()
    {
        (Process p, FakeBarFile bar) = Setup();
        int fd = p.Syscalls.Open("/dev/bar");
        Assert.Equal(0, p.Syscalls.Close(fd));

        Assert.False(p.Fds.TryGet(fd, out _));

        Assert.Equal(Errno.EBADF.AsReturn(), p.Syscalls.Ioctl(fd, 2, 5UL));
        Assert.Equal(1, bar.Releases);
    }

    [Fact]
    public void Ioctl_RacingCloseAndReopen_AnswersOrEBADFAndReleasesEveryFile()
    {
        // One thread closes and reopens fd 3 while another calls through it: each call either reaches a live file
        // (5) or finds the fd closed (EBADF), never a released file; every file opened is released exactly once,
        // whichever thread drops its last reference.
        Machine m = NewMachine();
        var files = new CountingFile();
        m.Devices.Register("/dev/counting", _ => DeviceOpenResult.Ok(files));
        Process p = m.Spawn("p");
        Assert.Equal(3, p.Syscalls.Open("/dev/counting"));
        const int Rounds = 2000;
        var results = new List<long>();
        var caller = new Thread(() =>
        {
            for (int i = 0; i < Rounds * 4; i++)
            {
                results.Add(p.Syscalls.Ioctl(3, 2, 5UL));
            }
        });
        caller.Start();
        for (int i = 0; i < Rounds; i++)
        {
            Assert.Equal(0, p.Syscalls.Close(3));
            Assert.Equal(3, p.Syscalls.Open("/dev/counting"));
        }
        caller.Join();

        Assert.All(results, r => Assert.True(r == 5 || r == Errno.EBADF.AsReturn(), $"ioctl returned {r}"));
        Assert.Equal(Rounds, files.Releases);
        Assert.Equal(0, p.Syscalls.Close(3));
        Assert.Equal(Rounds + 1, files.Releases);
    }

    // One driver behind every open of /dev/counting: its releases counted atomically (two threads may release).
    private sealed class CountingFile : IFileOperations
    {
        private int _releases;

        public int Releases => Volatile.Read(ref _releases);

        public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg) => Errno.ENOTTY.AsReturn();

        public long Ioctl(SyscallContext ctx, uint request, ulong value) => request == 2 ? (long)value : Errno.ENOTTY.AsReturn();

        public long Mmap(SyscallContext ctx, MmapRequest request) => Errno.ENODEV.AsReturn();

        public void Release() => Interlocked.Increment(ref _releases);
    }
}
