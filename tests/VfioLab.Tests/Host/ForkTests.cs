using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

public class ForkCopyOnWriteTests
{
    [Fact]
    public void Fork_PrivatePage_SharedUntilFirstWriteThenCopied()
    {
        Machine m = NewMachine();
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x1000);
        Assert.Equal(0, parent.Syscalls.WriteMemory(a, [1]));
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));
        Assert.Equal(Translate(parent.Mm!, a).Pfn, Translate(child!.Mm!, a).Pfn);
        Assert.False(Translate(parent.Mm!, a).Writable);
        Assert.Equal(0, child.Syscalls.WriteMemory(a, [2]));
        Assert.NotEqual(Translate(parent.Mm!, a).Pfn, Translate(child.Mm!, a).Pfn);
        byte[] b = new byte[1];
        parent.Syscalls.ReadMemory(a, b);
        Assert.Equal(1, b[0]);
        child.Syscalls.ReadMemory(a, b);
        Assert.Equal(2, b[0]);
        // The parent is now the only user of the original frame: its write reuses it.
        var before = Translate(parent.Mm!, a).Pfn;
        Assert.Equal(0, parent.Syscalls.WriteMemory(a, [3]));
        Assert.Equal(before, Translate(parent.Mm!, a).Pfn);
    }

    [Fact]
    public void Fork_PinnedPage_CopiedEagerlyAndParentKeepsFrame()
    {
        Machine m = NewMachine();
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x2000);
        Assert.Equal(0, parent.Syscalls.WriteMemory(a, [7, 0, 0, 0]));
        Assert.Equal(0, parent.Syscalls.WriteMemory(a + 0x1000, [8]));
        Assert.Equal(1, Pin(parent.Mm!, a, 1, true, out PfnRun[] runs));
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));
        Assert.Equal(runs[0].First, Translate(parent.Mm!, a).Pfn);
        Assert.True(Translate(parent.Mm!, a).Writable);
        Assert.NotEqual(runs[0].First, Translate(child!.Mm!, a).Pfn);
        Assert.True(Translate(child.Mm!, a).Writable);
        byte[] b = new byte[1];
        child.Syscalls.ReadMemory(a, b);
        Assert.Equal(7, b[0]);
        // The unpinned second page is COW-shared.
        Assert.Equal(Translate(parent.Mm!, a + 0x1000).Pfn, Translate(child.Mm!, a + 0x1000).Pfn);
        // A parent write after fork reaches the pinned frame the device sees.
        Assert.Equal(0, parent.Syscalls.WriteMemory(a, [9]));
        m.Memory.Read(runs[0].First.ToPhys(12), b);
        Assert.Equal(9, b[0]);
    }

    [Fact]
    public void Fork_SharedMapping_StaysShared()
    {
        Machine m = NewMachine();
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x1000, extra: MmapFlags.Shared);
        Assert.Equal(0, parent.Syscalls.WriteMemory(a, [1]));
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));
        Assert.Equal(0, child!.Syscalls.WriteMemory(a, [5]));
        byte[] b = new byte[1];
        parent.Syscalls.ReadMemory(a, b);
        Assert.Equal(5, b[0]);
    }

    [Fact]
    public void Fork_BothExit_AllFramesFreed()
    {
        Machine m = NewMachine();
        ulong free = m.Memory.FreeFrameCount;
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x10000, extra: MmapFlags.Populate);
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));
        Assert.Equal(0, child!.Syscalls.WriteMemory(a, new byte[0x3000]));
        parent.Exit();
        child.Exit();
        Assert.Equal(free, m.Memory.FreeFrameCount);
    }
}

public class ForkFileTests
{
    [Fact]
    public void Fork_FdTable_SharesOpenFilesUntilLastClose()
    {
        Machine m = NewMachine();
        FakeBarFile dev = RegisterBar(m);
        Process parent = m.Spawn("p");
        int fd = parent.Syscalls.Open("/dev/bar");
        ISyscallSurface child = parent.Syscalls.Fork();
        Assert.Equal(7, child.Ioctl(fd, 2, 7UL));
        parent.Exit();
        Assert.Equal(0, dev.Releases);
        Assert.Equal(0, child.Close(fd));
        Assert.Equal(1, dev.Releases);
    }
}
