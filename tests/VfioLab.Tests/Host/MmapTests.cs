using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

public class MmapErrorTests
{
    private readonly AddressSpace _mm = NewMachine().Spawn("p").Mm!;
    private const MemoryProtection Rw = MemoryProtection.Read | MemoryProtection.Write;

    [Fact]
    public void Mmap_ZeroLength_ReturnsEINVAL() =>
        Assert.Equal(Errno.EINVAL.AsReturn(), _mm.Mmap(0, 0, Rw, MmapFlags.Private | MmapFlags.Anonymous));

    [Fact]
    public void Mmap_FixedUnalignedAddress_ReturnsEINVAL() =>
        Assert.Equal(Errno.EINVAL.AsReturn(), _mm.Mmap(0x10001000 + 1, 4096, Rw, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed));

    [Fact]
    public void Mmap_NeitherSharedNorPrivate_ReturnsEINVAL() =>
        Assert.Equal(Errno.EINVAL.AsReturn(), _mm.Mmap(0, 4096, Rw, MmapFlags.Anonymous));

    [Fact]
    public void Mmap_FixedBelowMmapMinAddr_ReturnsEPERM() =>
        Assert.Equal(Errno.EPERM.AsReturn(), _mm.Mmap(0x1000, 4096, Rw, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed));

    [Fact]
    public void Mmap_HugetlbFixedNotHugeAligned_ReturnsEINVAL() =>
        Assert.Equal(Errno.EINVAL.AsReturn(), _mm.Mmap(0x40001000, 2 * MiB, Rw,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB | MmapFlags.Fixed));

    [Fact]
    public void Munmap_UnalignedOrZero_ReturnsEINVAL()
    {
        Assert.Equal(-(int)Errno.EINVAL, _mm.Munmap(0x10000001, 4096));
        Assert.Equal(-(int)Errno.EINVAL, _mm.Munmap(0x10000000, 0));
        Assert.Equal(0, _mm.Munmap(0x10000000, 4096));
    }

    [Fact]
    public void Mmap_TooLargeForAddressSpace_ReturnsENOMEM() =>
        Assert.Equal(Errno.ENOMEM.AsReturn(), _mm.Mmap(0, AddressSpace.TaskSize, Rw, MmapFlags.Private | MmapFlags.Anonymous));
}

public class MmapPlacementTests
{
    [Fact]
    public void Mmap_NoHint_PlacesTopDownBelowMmapBase()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x3000);
        ulong b = MmapAnon(mm, 0x1000);
        Assert.Equal(AddressSpace.MmapBase - 0x3000, a);
        Assert.Equal(a - 0x1000, b);
    }

    [Fact]
    public void Mmap_Hugetlb_RoundsLengthUpAndAlignsAddress()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        long r = mm.Mmap(0, 3 * MiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB);
        Assert.True(r > 0);
        Assert.Equal(0UL, (ulong)r % (2 * MiB));
        mm.MmapReadLock();
        Vma vma = mm.FindVmaLocked(new HostVirtAddr((ulong)r))!;
        mm.MmapReadUnlock();
        Assert.Equal(1024UL, vma.PageCount);
    }

    [Fact]
    public void Munmap_Middle_SplitsVmaAndFreesFrames()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x10000, extra: MmapFlags.Populate);
        ulong free = m.Memory.FreeFrameCount;
        Assert.Equal(0, mm.Munmap(a + 0x4000, 0x4000));
        Assert.Equal(free + 4, m.Memory.FreeFrameCount);
        mm.MmapReadLock();
        List<Vma> vmas = mm.SnapshotVmasLocked();
        mm.MmapReadUnlock();
        Assert.Equal(2, vmas.Count);
        Assert.Equal(a + 0x8000, vmas[1].Start.Value);
        Assert.Equal(-(int)Errno.EFAULT, mm.Machine.FindProcess(1)!.Syscalls.ReadMemory(a + 0x4000, new byte[1]));
    }

    [Fact]
    public void Munmap_HugetlbPartialOffBoundary_ReturnsEINVAL()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 4 * MiB, extra: MmapFlags.HugeTlb | MmapFlags.Huge2MiB);
        Assert.Equal(-(int)Errno.EINVAL, mm.Munmap(a, 0x1000));
        Assert.Equal(0, mm.Munmap(a, 2 * MiB));
    }

    [Fact]
    public void Mmap_Populate_FaultsEveryPage()
    {
        Machine m = NewMachine();
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x20000, extra: MmapFlags.Populate);
        mm.MmapReadLock();
        Assert.Equal(32UL, mm.PresentPagesLocked(new HostVirtAddr(a), 32));
        mm.MmapReadUnlock();
    }
}
