using VfioLab.Abi;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

public class DeviceMappingTests
{
    private const MemoryProtection Rw = MemoryProtection.Read | MemoryProtection.Write;

    private static (Machine, Process, FakeBarFile, int) Setup()
    {
        Machine m = NewMachine();
        var dev = new FakeBarFile(m.AllocateMmioPfns(64), 64);
        m.Devices.Register("/dev/bar", _ => DeviceOpenResult.Ok(dev));
        Process p = m.Spawn("p");
        return (m, p, dev, p.Syscalls.Open("/dev/bar"));
    }

    [Fact]
    public void ReadMemory_BarWithoutMmioBus_FaultsInAndReadsAllOnes()
    {
        (_, Process p, FakeBarFile dev, int fd) = Setup();
        long a = p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0x1000);
        Assert.True(a > 0);
        byte[] b = new byte[2];
        Assert.Equal(0, p.Syscalls.ReadMemory((ulong)a, b));
        Assert.Equal(new byte[] { 0xff, 0xff }, b);
        Assert.Equal(dev.BarPfn.Plus(1), Translate(p.Mm!, (ulong)a).Pfn);
        Assert.Equal(1, dev.Faults);
    }

    [Fact]
    public void ReadMemory_HandlerRefuses_ReturnsEIOForSigbus()
    {
        (_, Process p, FakeBarFile dev, int fd) = Setup();
        long a = p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0);
        dev.Enabled = false;
        Assert.Equal(-(int)Errno.EIO, p.Syscalls.ReadMemory((ulong)a, new byte[1]));
    }

    [Fact]
    public void UnmapMappingRange_ZapsEveryProcessAndLaterAccessRefaults()
    {
        (Machine _, Process p, FakeBarFile dev, int fd) = Setup();
        long a = p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0);
        Assert.Equal(0, p.Syscalls.WriteMemory((ulong)a, [1]));
        Assert.Equal(Errno.None, p.TryFork(out Process? child));
        Assert.Equal(2, dev.Mapping.MappedVmaCount);
        dev.Enabled = false;
        dev.Mapping.UnmapMappingRange(0, 0);
        Assert.Equal(1UL, dev.Mapping.ZapCount);
        Assert.Equal(8UL, dev.Mapping.ZappedPages);
        Assert.Equal(-(int)Errno.EIO, child!.Syscalls.ReadMemory((ulong)a, new byte[1]));
        dev.Enabled = true;
        Assert.Equal(0, p.Syscalls.ReadMemory((ulong)a, new byte[1]));
    }

    [Fact]
    public void Close_WhileMapped_ReleaseWaitsForMunmap()
    {
        (_, Process p, FakeBarFile dev, int fd) = Setup();
        long a = p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0);
        Assert.Equal(0, p.Syscalls.Close(fd));
        Assert.Equal(0, dev.Releases);
        Assert.Equal(0, p.Syscalls.Munmap((ulong)a, 0x4000));
        Assert.Equal(1, dev.Releases);
        Assert.Equal(0, dev.Mapping.MappedVmaCount);
    }

    // Regression: the last put of a VMA's file ran the driver's release under the mmap write lock; a vfio
    // device's release takes its group lock, which ranks before the mmap lock (docs/architecture.md "Locks"), so munmap could
    // deadlock against an attach that pins from the same mm. Linux defers that fput to task work.
    [Fact]
    public void Munmap_LastReferenceIsTheVma_ReleaseRunsAfterTheMmapLockIsDropped()
    {
        (_, Process p, FakeBarFile dev, int fd) = Setup();
        dev.Watched = p.Mm;
        long a = p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0);
        Assert.Equal(0, p.Syscalls.Close(fd));

        Assert.Equal(0, p.Syscalls.Munmap((ulong)a, 0x4000));

        Assert.Equal(1, dev.Releases);
        Assert.Equal(0, dev.ReleasesUnderMmapLock);
    }

    [Fact]
    public void Exit_LastReferenceIsTheVma_ReleaseRunsAfterTheMmapLockIsDropped()
    {
        (_, Process p, FakeBarFile dev, int fd) = Setup();
        dev.Watched = p.Mm;
        Assert.True(p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 0) > 0);
        Assert.Equal(0, p.Syscalls.Close(fd));

        p.Exit();

        Assert.Equal(1, dev.Releases);
        Assert.Equal(0, dev.ReleasesUnderMmapLock);
    }

    [Fact]
    public void Mmap_DriverRejects_ReturnsDriverErrno()
    {
        (_, Process p, _, int fd) = Setup();
        Assert.Equal(Errno.EINVAL.AsReturn(), p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 63 * 4096));
        Assert.Equal(Errno.EINVAL.AsReturn(), p.Syscalls.Mmap(0, 0x4000, Rw, MmapFlags.Shared, fd, 1));
    }
}
