using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

public class GupPinTests
{
    [Fact]
    public void PinUserPages_AnonymousContiguous_PinsOneRunAndFaultsIn()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x8000);
        Assert.Equal(8, Pin(mm, a, 8, true, out PfnRun[] runs));
        Assert.Single(runs);
        Assert.Equal(8UL, m.Memory.PinnedFrameCount);
        Assert.Equal(runs[0].First, Translate(mm, a).Pfn);
    }

    [Fact]
    public void PinUserPages_Hole_ReturnsEFAULT()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        Assert.Equal(Errno.EFAULT.AsReturn(), Pin(mm, 0x10000000, 1, false, out _));
    }

    [Fact]
    public void PinUserPages_RunsIntoHole_StopsAfterPinnedPages()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000);
        Assert.Equal(0, mm.Munmap(a + 0x2000, 0x2000));
        Assert.Equal(2, Pin(mm, a, 4, true, out _));
    }

    [Fact]
    public void PinUserPages_WriteToReadOnly_ReturnsEFAULT()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000, MemoryProtection.Read);
        Assert.Equal(Errno.EFAULT.AsReturn(), Pin(mm, a, 1, true, out _));
        Assert.Equal(1, Pin(mm, a, 1, false, out _));
    }

    [Fact]
    public void PinUserPages_PfnMap_ReturnsEFAULT()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        long a = mm.MmapOtherMmio(0, 0x4000, MemoryProtection.Read | MemoryProtection.Write, false, false, m.AllocateMmioPfns(4));
        Assert.True(a > 0);
        Assert.Equal(Errno.EFAULT.AsReturn(), Pin(mm, (ulong)a, 1, false, out _));
    }

    [Fact]
    public void PinUserPages_ScatteredLayout_BreaksRunsAtDiscontinuities()
    {
        Machine m = NewMachine(layout: FrameLayout.ScatteredRuns(4, 3));
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 16 * 4096);
        Assert.Equal(16, Pin(mm, a, 16, true, out PfnRun[] runs));
        Assert.True(runs.Length > 1);
        Assert.All(runs, r => Assert.Equal(0UL, r.Count % 4));
        for (int i = 1; i < runs.Length; i++)
        {
            Assert.NotEqual(runs[i - 1].Last.Value + 1, runs[i].First.Value);
        }
    }

    [Fact]
    public void PinUserPages_Batch512_FillsPerPageArray()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 600 * 4096);
        var pages = new Pfn[Gup.DefaultBatchPages];
        mm.MmapReadLock();
        long n = Gup.PinUserPagesLocked(mm, new HostVirtAddr(a), true, pages);
        mm.MmapReadUnlock();
        Assert.Equal(512, n);
        Assert.Equal(512, Gup.ContiguousPrefix(pages));
    }

    [Fact]
    public void PinUserPages_64KiBHost_PinsLargePages()
    {
        Machine m = NewMachine(256 * MiB, pageShift: 16);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x40000);
        Assert.Equal(0UL, a % 0x10000);
        Assert.Equal(4, Pin(mm, a, 4, true, out PfnRun[] runs));
        Assert.Single(runs);
        Assert.Equal(-(int)Errno.EINVAL, mm.Munmap(a + 0x1000, 0x1000));
    }

    [Fact]
    public void PinUserPages_Hugetlb1G_OneContiguousAlignedRun()
    {
        Machine m = NewMachine(4 * GiB);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 2 * GiB, extra: MmapFlags.HugeTlb | MmapFlags.Huge1GiB);
        Assert.Equal(0UL, a % GiB);
        Assert.Equal(1L << 19, Pin(mm, a, 1UL << 19, true, out PfnRun[] runs));
        Assert.True(runs.Length <= 2);
        Assert.All(runs, r => Assert.Equal(0UL, r.First.Value % (1UL << 18)));
    }

    [Fact]
    public void PinUserPages_RamExhausted_ReturnsENOMEM()
    {
        Machine m = NewMachine(1 * MiB);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 2 * MiB);
        Assert.Equal(256, Pin(mm, a, 512, true, out _));
        Assert.Equal(Errno.ENOMEM.AsReturn(), Pin(mm, a + MiB, 1, true, out _));
    }
}

public class FollowPfnmapTests
{
    [Fact]
    public void TryFollowPfnmap_OtherMmio_ReservedPfnFromVmPgoff()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        Pfn mmio = m.AllocateMmioPfns(4);
        ulong a = (ulong)mm.MmapOtherMmio(0, 0x4000, MemoryProtection.Read, false, false, mmio);
        mm.MmapReadLock();
        Vma vma = mm.FindVmaLocked(new HostVirtAddr(a + 0x1000))!;
        Assert.True(mm.TryFollowPfnmapLocked(vma, new HostVirtAddr(a + 0x1000), out PfnmapEntry e));
        mm.MmapReadUnlock();
        Assert.Equal(mmio.Plus(1), e.Pfn);
        Assert.Equal(mmio.Value, vma.VmPgoff);
        Assert.True(e.ReservedOrInvalid);
        Assert.False(e.Writable);
        Assert.Equal(1UL, e.BlockPages);
    }

    [Fact]
    public void TryFollowPfnmap_RefcountedMmio_ReportsStructPage()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = (ulong)mm.MmapOtherMmio(0, 0x4000, MemoryProtection.Read | MemoryProtection.Write, false, true, default);
        mm.MmapReadLock();
        Vma vma = mm.FindVmaLocked(new HostVirtAddr(a))!;
        Assert.True(mm.TryFollowPfnmapLocked(vma, new HostVirtAddr(a), out PfnmapEntry e));
        mm.MmapReadUnlock();
        Assert.False(e.ReservedOrInvalid);
        Assert.True(e.Writable);
        ulong free = m.Memory.FreeFrameCount;
        Assert.Equal(0, mm.Munmap(a, 0x4000));
        Assert.Equal(free + 4, m.Memory.FreeFrameCount);
    }

    [Fact]
    public void TryFollowPfnmap_DeviceMapping_NeedsFaultThenReportsHugeBlock()
    {
        Machine m = NewMachine();
        Process p = m.Spawn("p");
        var bar = new FakeBarFile(m.AllocateMmioPfns(1024, 512), 1024);
        m.Devices.Register("/dev/bar", _ => DeviceOpenResult.Ok(bar));
        int fd = p.Syscalls.Open("/dev/bar");
        long a = p.Syscalls.Mmap(0x4000_0000, 4 * MiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Shared | MmapFlags.Fixed, fd, 0);
        Assert.Equal(0x4000_0000, a);
        AddressSpace mm = p.Mm!;
        var va = new HostVirtAddr(0x4000_0000 + 0x3000);
        mm.MmapReadLock();
        Vma vma = mm.FindVmaLocked(va)!;
        Assert.False(mm.TryFollowPfnmapLocked(vma, va, out _));
        Assert.Equal(Errno.None, mm.FixupUserFaultLocked(va, true));
        Assert.True(mm.TryFollowPfnmapLocked(vma, va, out PfnmapEntry e));
        mm.MmapReadUnlock();
        Assert.Equal(bar.BarPfn.Plus(3), e.Pfn);
        Assert.Equal(512UL - 3, e.BlockPages);
        Assert.True(e.ReservedOrInvalid);
    }
}
