using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>fds 0, 1 and 2: a new process has them open on one <c>/dev/null</c> file, they answer a VFIO
/// ioctl with ENOTTY, a closed one is the next open's fd, fork copies them, exec keeps them, exit closes them.</summary>
public sealed class StandardStreamsTests
{
    private static (Machine Machine, Process Process, FakeBarFile Bar) Setup()
    {
        Machine m = NewMachine();
        FakeBarFile bar = RegisterBar(m);
        return (m, m.Spawn("p"), bar);
    }

    private static OpenFile FileAt(Process p, int fd)
    {
        Assert.True(p.Fds.TryGet(fd, out OpenFile file), $"fd {fd} is not open");
        file.Put();
        return file;
    }

    [Fact]
    public void Spawn_NewProcess_HasFds0To2OnOneDevNullFile()
    {
        (_, Process p, _) = Setup();

        Assert.Equal([0, 1, 2], p.Fds.Snapshot());
        OpenFile stdin = FileAt(p, 0);
        Assert.Same(stdin, FileAt(p, 1));
        Assert.Same(stdin, FileAt(p, 2));
        Assert.Equal(NullFile.Path, stdin.Path);
        Assert.Same(NullFile.Instance, stdin.Operations);
        Assert.Equal(3, stdin.RefCount);
    }

    [Fact]
    public void Open_NewProcess_Returns3()
    {
        (_, Process p, _) = Setup();

        Assert.Equal(3, p.Syscalls.Open("/dev/bar"));
        Assert.Equal([0, 1, 2, 3], p.Fds.Snapshot());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Ioctl_VfioRequestOnStandardStream_ReturnsENOTTY(int fd)
    {
        (_, Process p, _) = Setup();
        byte[] map = new byte[VfioIommuType1DmaMap.SizeOf];
        map[0] = VfioIommuType1DmaMap.SizeOf;

        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(fd, VfioIoctl.GetApiVersion, 0UL));
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(fd, VfioIoctl.GroupGetStatus, new byte[8]));
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(fd, VfioIoctl.IommuMapDma, map));

        Assert.Equal(VfioIommuType1DmaMap.SizeOf, map[0]);
        Assert.Equal([0, 1, 2], p.Fds.Snapshot());
        Assert.Equal(3, FileAt(p, fd).RefCount);
    }

    [Fact]
    public void PreadPwrite_StandardStream_ReadsEndOfFileAndWritesEverything()
    {
        (_, Process p, _) = Setup();
        byte[] buffer = [1, 2, 3, 4];

        Assert.Equal(0, p.Syscalls.Pread(0, buffer, 0));
        Assert.Equal(4, p.Syscalls.Pwrite(1, buffer, 0x100));

        Assert.Equal([1, 2, 3, 4], buffer);
    }

    [Fact]
    public void Mmap_StandardStream_ReturnsENODEV()
    {
        (_, Process p, _) = Setup();

        Assert.Equal(Errno.ENODEV.AsReturn(), p.Syscalls.Mmap(0, 0x1000, MemoryProtection.Read, MmapFlags.Shared, 0, 0));

        AddressSpace mm = p.Mm!;
        mm.MmapReadLock();
        try
        {
            Assert.Empty(mm.SnapshotVmasLocked());
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        Assert.Equal(3, FileAt(p, 0).RefCount);
    }

    [Fact]
    public void Open_AfterClosingFd1_Returns1()
    {
        (_, Process p, _) = Setup();
        OpenFile stdio = FileAt(p, 0);

        Assert.Equal(0, p.Syscalls.Close(1));
        Assert.Equal(1, p.Syscalls.Open("/dev/bar"));

        Assert.Equal(7, p.Syscalls.Ioctl(1, 2, 7UL));
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(0, 2, 7UL));
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(2, 2, 7UL));
        Assert.Equal(2, stdio.RefCount);
        Assert.Equal(3, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void Open_AllThreeClosed_Returns0AndTheDevNullFileIsReleased()
    {
        (_, Process p, _) = Setup();
        OpenFile stdio = FileAt(p, 0);

        Assert.Equal(0, p.Syscalls.Close(2));
        Assert.Equal(0, p.Syscalls.Close(0));
        Assert.Equal(0, p.Syscalls.Close(1));
        Assert.Equal(-(int)Errno.EBADF, p.Syscalls.Close(1));

        Assert.True(stdio.IsReleased);
        Assert.Equal(0, p.Fds.Count);
        Assert.Equal(0, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void Open_DevNull_ReturnsANewFileThatAnswersENOTTY()
    {
        (_, Process p, _) = Setup();

        int fd = p.Syscalls.Open(NullFile.Path);

        Assert.Equal(3, fd);
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(fd, VfioIoctl.GetApiVersion, 0UL));
        Assert.NotSame(FileAt(p, 0), FileAt(p, fd));
        Assert.Equal(1, FileAt(p, fd).RefCount);
    }

    [Fact]
    public void Fork_NewProcess_ChildHasFds0To2SharingTheParentsFile()
    {
        (_, Process parent, _) = Setup();
        OpenFile stdio = FileAt(parent, 0);

        Assert.Equal(Errno.None, parent.TryFork(out Process? child));

        Assert.Equal([0, 1, 2], child!.Fds.Snapshot());
        Assert.Same(stdio, FileAt(child, 0));
        Assert.Same(stdio, FileAt(child, 2));
        Assert.Equal(6, stdio.RefCount);
        Assert.Equal(Errno.ENOTTY.AsReturn(), child.Syscalls.Ioctl(1, VfioIoctl.GetApiVersion, 0UL));
        Assert.Equal(3, child.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void Fork_ParentClosedFd1_ChildLacksFd1AndReusesIt()
    {
        (_, Process parent, _) = Setup();
        Assert.Equal(0, parent.Syscalls.Close(1));

        Assert.Equal(Errno.None, parent.TryFork(out Process? child));

        Assert.Equal([0, 2], child!.Fds.Snapshot());
        Assert.Equal(Errno.EBADF.AsReturn(), child.Syscalls.Ioctl(1, VfioIoctl.GetApiVersion, 0UL));
        Assert.Equal(1, child.Syscalls.Open("/dev/bar"));
        Assert.Equal([0, 2], parent.Fds.Snapshot());
    }

    [Fact]
    public void Exec_ProcessWithStandardStreams_KeepsThem()
    {
        (_, Process p, _) = Setup();
        OpenFile stdio = FileAt(p, 0);

        Assert.Equal(Errno.None, p.Exec());

        Assert.Equal([0, 1, 2], p.Fds.Snapshot());
        Assert.Same(stdio, FileAt(p, 1));
        Assert.Equal(3, stdio.RefCount);
        Assert.Equal(3, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void Exit_ProcessWithStandardStreams_ClosesThemAndReleasesTheFile()
    {
        (Machine m, Process p, _) = Setup();
        OpenFile stdio = FileAt(p, 0);

        p.Exit();

        Assert.Equal(0, p.Fds.Count);
        Assert.Empty(p.Fds.Snapshot());
        Assert.True(stdio.IsReleased);
        Assert.Empty(m.Processes);
        Assert.Equal(Errno.ESRCH.AsReturn(), p.Syscalls.Ioctl(0, VfioIoctl.GetApiVersion, 0UL));
    }

    [Fact]
    public void Exit_ForkedChild_ParentKeepsItsStandardStreams()
    {
        (_, Process parent, _) = Setup();
        OpenFile stdio = FileAt(parent, 0);
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));

        child!.Exit();

        Assert.Equal(0, child.Fds.Count);
        Assert.Equal(3, stdio.RefCount);
        Assert.Equal([0, 1, 2], parent.Fds.Snapshot());
        Assert.Equal(Errno.ENOTTY.AsReturn(), parent.Syscalls.Ioctl(2, VfioIoctl.GetApiVersion, 0UL));
    }
}
