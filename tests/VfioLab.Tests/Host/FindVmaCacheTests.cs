using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>The VMA <see cref="AddressSpace.FindVmaLocked"/> remembers (issue 16): forgotten at every change of the VMAs,
/// so a lookup after munmap, a split or a MAP_FIXED replacement finds what the address space holds now.</summary>
public class FindVmaCacheTests
{
    private static Vma? Find(AddressSpace mm, ulong vaddr)
    {
        mm.MmapReadLock();
        try
        {
            return mm.FindVmaLocked(new HostVirtAddr(vaddr));
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    [Fact]
    public void AfterMunmap_TheRememberedVmaIsGone()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
        Assert.NotNull(Find(mm, a));
        Assert.Equal(1, Pin(mm, a, 1, true, out _));

        Assert.Equal(0, mm.Munmap(a, 0x4000));

        Assert.Null(Find(mm, a));
        Assert.Equal(Errno.EFAULT.AsReturn(), Pin(mm, a + 0x1000, 1, true, out _));
    }

    [Fact]
    public void AfterASplit_TheLookupFindsTheSlice()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000);
        Vma whole = Find(mm, a + 0x3000)!;
        Assert.Equal(a >> 12, whole.StartPage);

        Assert.Equal(0, mm.Munmap(a + 0x1000, 0x1000));

        Assert.Null(Find(mm, a + 0x1000));
        Vma tail = Find(mm, a + 0x3000)!;
        Assert.NotSame(whole, tail);
        Assert.Equal((a + 0x2000) >> 12, tail.StartPage);
        Assert.Equal((a >> 12) + 0, Find(mm, a)!.StartPage);
        Assert.Equal(a >> 12, Find(mm, a)!.LastPage);
    }

    [Fact]
    public void AfterMapFixed_TheLookupFindsTheNewVma()
    {
        AddressSpace mm = NewMachine().Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000);
        Assert.True(Find(mm, a + 0x1000)!.IsWritable);

        long r = mm.Mmap(a, 0x2000, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed);
        Assert.Equal((long)a, r);

        Assert.False(Find(mm, a + 0x1000)!.IsWritable);
        Assert.True(Find(mm, a + 0x3000)!.IsWritable);
        Assert.Equal(Errno.EFAULT.AsReturn(), Pin(mm, a + 0x1000, 1, true, out _));
    }

    [Fact]
    public void AfterFork_EachMmFindsItsOwnVma()
    {
        Machine m = NewMachine();
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x4000);
        Vma mine = Find(parent.Mm!, a)!;
        Assert.Equal(Errno.None, parent.TryFork(out Process? child));

        Vma theirs = Find(child!.Mm!, a)!;
        Assert.NotSame(mine, theirs);
        Assert.Same(child.Mm, theirs.Mm);
        Assert.Same(mine, Find(parent.Mm!, a));
    }
}
