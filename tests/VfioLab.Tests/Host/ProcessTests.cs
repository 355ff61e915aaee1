using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

public class FdTableTests
{
    private static (Machine, Process, FakeBarFile) Setup()
    {
        Machine m = NewMachine();
        FakeBarFile dev = RegisterBar(m);
        m.Devices.Register("/dev/busy", _ => DeviceOpenResult.Fail(Errno.EBUSY));
        return (m, m.Spawn("p"), dev);
    }

    [Fact]
    public void Open_AfterClose_ReusesLowestFd()
    {
        (_, Process p, _) = Setup();
        Assert.Equal(3, p.Syscalls.Open("/dev/bar"));
        Assert.Equal(4, p.Syscalls.Open("/dev/bar"));
        Assert.Equal(5, p.Syscalls.Open("/dev/bar"));
        Assert.Equal(0, p.Syscalls.Close(4));
        Assert.Equal(4, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void Open_UnknownPathOrDriverError_ReturnsErrno()
    {
        (_, Process p, _) = Setup();
        Assert.Equal(-(int)Errno.ENOENT, p.Syscalls.Open("/dev/none"));
        Assert.Equal(-(int)Errno.EBUSY, p.Syscalls.Open("/dev/busy"));
    }

    [Fact]
    public void Open_1025thFile_ReturnsEMFILE()
    {
        (_, Process p, _) = Setup();
        for (int i = FdTable.StandardStreams; i < FdTable.MaxFds; i++)
        {
            Assert.Equal(i, p.Syscalls.Open("/dev/bar"));
        }
        Assert.Equal(-(int)Errno.EMFILE, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void IoctlAndClose_BadFd_ReturnEBADF()
    {
        (_, Process p, _) = Setup();
        Assert.Equal(Errno.EBADF.AsReturn(), p.Syscalls.Ioctl(3, 1, new byte[4]));
        Assert.Equal(Errno.EBADF.AsReturn(), p.Syscalls.Ioctl(-1, 2, 0UL));
        Assert.Equal(-(int)Errno.EBADF, p.Syscalls.Close(3));
        Assert.Equal(Errno.EBADF.AsReturn(), p.Syscalls.Mmap(0, 4096, MemoryProtection.Read, MmapFlags.Shared, 3, 0));
    }

    [Fact]
    public void Ioctl_ValidFd_DelegatesToDriver()
    {
        (_, Process p, _) = Setup();
        int fd = p.Syscalls.Open("/dev/bar");
        Assert.Equal(4, p.Syscalls.Ioctl(fd, 1, new byte[4]));
        Assert.Equal(Errno.ENOTTY.AsReturn(), p.Syscalls.Ioctl(fd, 9, 0UL));
    }
}

public class ProcessExitTests
{
    [Fact]
    public void Exit_ClosesFdsFreesMemoryAndKeepsLockedVmReadable()
    {
        Machine m = NewMachine();
        FakeBarFile dev = RegisterBar(m);
        ulong free = m.Memory.FreeFrameCount;
        Process p = m.Spawn("p", memlockBytes: 1 * MiB);
        Assert.Equal(256UL, p.MemlockLimitPages);
        p.Syscalls.Open("/dev/bar");
        AddressSpace mm = p.Mm!;
        MmapAnon(mm, 0x8000, extra: MmapFlags.Populate);
        mm.MmapWriteLock();
        mm.AddLockedVmLocked(8, ulong.MaxValue);
        mm.MmapWriteUnlock();
        p.Exit();
        Assert.Null(p.Mm);
        Assert.False(mm.IsAlive);
        Assert.False(mm.TryGetUser());
        Assert.Equal(8UL, mm.LockedVm);
        Assert.Equal(1, dev.Releases);
        Assert.Equal(free, m.Memory.FreeFrameCount);
        Assert.Empty(m.Processes);
        Assert.Equal(Errno.ESRCH.AsReturn(), p.Syscalls.Ioctl(0, 1, 0UL));
    }

    [Fact]
    public void Exit_PinnedPages_StayAllocatedUntilUnpinned()
    {
        Machine m = NewMachine();
        ulong free = m.Memory.FreeFrameCount;
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x4000);
        Assert.Equal(4, Pin(p.Mm!, a, 4, true, out PfnRun[] runs));
        p.Exit();
        Assert.Equal(free - 4, m.Memory.FreeFrameCount);
        Gup.UnpinUserPages(m, runs[0], markDirty: true);
        Assert.Equal(free, m.Memory.FreeFrameCount);
        Assert.Equal(0UL, m.Memory.TotalPins);
    }

    [Fact]
    public void AddLockedVm_Underflow_Wraps()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        mm.MmapWriteLock();
        mm.AddLockedVmLocked(-1, ulong.MaxValue);
        mm.MmapWriteUnlock();
        Assert.Equal(ulong.MaxValue, mm.LockedVm);
#if DEBUG
        // Without the mmap write lock: a caller bug, asserted in debug builds only (AssertMmapWriteLocked).
        Assert.Throws<InvalidOperationException>(() => mm.AddLockedVmLocked(1, ulong.MaxValue));
#endif
    }
}
