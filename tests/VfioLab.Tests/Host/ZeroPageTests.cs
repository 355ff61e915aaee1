using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>The shared zero frame: read faults of untouched private anonymous memory, COW away from it, and GUP's
/// read-only long-term pin of it under both settings of <see cref="GupBehavior.LongTermPinUnsharesZeroPage"/>.</summary>
public class ZeroPageTests
{
    private static readonly GupBehavior Linux61 = new(LongTermPinUnsharesZeroPage: false);

    private static Machine NewMachine(GupBehavior? gup) => new(64 * MiB, gup: gup);

    [Fact]
    public void ReadMemory_UntouchedPrivatePages_MapTheZeroFrameAsOneReadOnlyRun()
    {
        Machine m = HostFixture.NewMachine();
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x100000);
        ulong free = m.Memory.FreeFrameCount;
        byte[] b = new byte[0x100000];
        b.AsSpan().Fill(0xEE);

        Assert.Equal(0, p.Syscalls.ReadMemory(a, b));

        Assert.All(b, x => Assert.Equal(0, x));
        // One frame for the zero page, taken on first use; the 256 pages share it.
        Assert.Equal(free - 1, m.Memory.FreeFrameCount);
        Pfn zero = m.Memory.ZeroFrame!.Value;
        Pte first = Translate(p.Mm!, a);
        Pte last = Translate(p.Mm!, a + 0xff000);
        Assert.Equal(new Pte(zero, false, true), first);
        Assert.Equal(first, last);
        Assert.True(m.Memory.IsReservedOrInvalid(zero));
        Assert.Equal(1UL, m.Memory.CountReservedOrInvalid(new Pfn(zero.Value == 0 ? 0 : zero.Value - 1), 2));
        Assert.Equal(0UL, m.Memory.PinnedFrameCount);
    }

    [Fact]
    public void WriteMemory_AfterRead_CopiesAwayFromTheZeroFrameForTheWrittenPageOnly()
    {
        Machine m = HostFixture.NewMachine();
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x4000);
        Assert.Equal(0, p.Syscalls.ReadMemory(a, new byte[0x4000]));
        Pfn zero = m.Memory.ZeroFrame!.Value;

        Assert.Equal(0, p.Syscalls.WriteMemory(a + 0x1000, [1, 2, 3]));

        Pte written = Translate(p.Mm!, a + 0x1000);
        Assert.False(written.ZeroPage);
        Assert.True(written.Writable);
        Assert.NotEqual(zero, written.Pfn);
        Assert.Equal(zero, Translate(p.Mm!, a).Pfn);
        Assert.Equal(zero, Translate(p.Mm!, a + 0x2000).Pfn);
        byte[] b = new byte[4];
        Assert.Equal(0, p.Syscalls.ReadMemory(a + 0x1000, b));
        Assert.Equal(new byte[] { 1, 2, 3, 0 }, b);
        // The zero frame itself was never written.
        byte[] z = new byte[m.PageSize];
        Assert.True(m.Memory.Read(zero.ToPhys(m.PageShift), z));
        Assert.All(z, x => Assert.Equal(0, x));
    }

    [Fact]
    public void Munmap_ZeroPages_DropNoReferenceAndKeepTheZeroFrame()
    {
        Machine m = HostFixture.NewMachine();
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x8000);
        Assert.Equal(0, p.Syscalls.ReadMemory(a, new byte[0x8000]));
        ulong free = m.Memory.FreeFrameCount;
        Pfn zero = m.Memory.ZeroFrame!.Value;

        Assert.Equal(0, p.Mm!.Munmap(a, 0x8000));

        Assert.Equal(free, m.Memory.FreeFrameCount);
        Assert.Equal(zero, m.Memory.ZeroFrame);
        Assert.Equal(1UL, m.Memory.RefCount(zero));
    }

    [Fact]
    public void Fork_ZeroPages_SharedByBothUntilEachWrites()
    {
        Machine m = HostFixture.NewMachine();
        Process parent = m.Spawn("p");
        ulong a = MmapAnon(parent.Mm!, 0x2000);
        Assert.Equal(0, parent.Syscalls.ReadMemory(a, new byte[0x2000]));
        Pfn zero = m.Memory.ZeroFrame!.Value;

        Assert.Equal(Errno.None, parent.TryFork(out Process? child));
        Assert.Equal(zero, Translate(child!.Mm!, a + 0x1000).Pfn);
        Assert.Equal(0, child.Syscalls.WriteMemory(a, [9]));

        Assert.Equal(zero, Translate(parent.Mm!, a).Pfn);
        Assert.NotEqual(zero, Translate(child.Mm!, a).Pfn);
        byte[] b = new byte[1];
        Assert.Equal(0, parent.Syscalls.ReadMemory(a, b));
        Assert.Equal(0, b[0]);
        Assert.Equal(1UL, m.Memory.RefCount(zero));
    }

    [Fact]
    public void PinReadOnly_UntouchedPagesUnderLinux61_ReturnsTheZeroFrameOncePerPageWithoutPinning()
    {
        Machine m = NewMachine(Linux61);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000);

        Assert.Equal(4, Pin(mm, a, 4, false, out PfnRun[] runs));

        Pfn zero = m.Memory.ZeroFrame!.Value;
        Assert.Equal(4, runs.Length);
        Assert.All(runs, r => Assert.Equal(new PfnRun(zero, 1), r));
        Assert.Equal(0UL, m.Memory.TotalPins);
        Assert.True(Translate(mm, a + 0x3000).ZeroPage);
        // Releasing them, as type1's batch does with the pages it did not use, leaves nothing to unpin.
        foreach (PfnRun r in runs)
        {
            Gup.UnpinUserPages(m, r, markDirty: false);
        }
        Assert.Equal(0UL, m.Memory.TotalPins);
    }

    [Theory]
    [InlineData(MemoryProtection.Read | MemoryProtection.Write)]
    [InlineData(MemoryProtection.Read)]
    public void PinReadOnly_UntouchedPagesSinceV62_UnsharesIntoFreshPinnedFrames(MemoryProtection prot)
    {
        Machine m = NewMachine(GupBehavior.Default);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x4000, prot);
        Assert.Equal(0, mm.Machine.FindProcess(1)!.Syscalls.ReadMemory(a, new byte[0x2000]));
        Assert.True(Translate(mm, a).ZeroPage);

        Assert.Equal(4, Pin(mm, a, 4, false, out PfnRun[] runs));

        Pfn zero = m.Memory.ZeroFrame!.Value;
        Assert.DoesNotContain(runs, r => r.First == zero);
        Assert.Equal(4UL, m.Memory.PinnedFrameCount);
        Assert.False(Translate(mm, a).ZeroPage);
        Assert.Equal((prot & MemoryProtection.Write) != 0, Translate(mm, a).Writable);
    }

    [Fact]
    public void PinReadOnly_ZeroPagesBetweenRealFramesUnderLinux61_NeverJoinsTheZeroFrameToANeighbour()
    {
        Machine m = NewMachine(Linux61);
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x3000);
        // The zero frame is taken first (the lowest free frame above pfn 0), then pages on either side get the frames around it.
        Assert.Equal(0, p.Syscalls.ReadMemory(a + 0x1000, new byte[1]));
        Assert.Equal(0, p.Syscalls.WriteMemory(a, [1]));
        Assert.Equal(0, p.Syscalls.WriteMemory(a + 0x2000, [2]));
        Pfn zero = m.Memory.ZeroFrame!.Value;

        Assert.Equal(3, Pin(p.Mm!, a, 3, false, out PfnRun[] runs));

        Assert.Equal(3, runs.Length);
        Assert.Equal(new PfnRun(zero, 1), runs[1]);
        Assert.Equal(2UL, m.Memory.PinnedFrameCount);
    }

    [Fact]
    public void PinWrite_ZeroPagesUnderLinux61_CopiesAwayAsAWriteFault()
    {
        Machine m = NewMachine(Linux61);
        Process p = m.Spawn("p");
        ulong a = MmapAnon(p.Mm!, 0x2000);
        Assert.Equal(0, p.Syscalls.ReadMemory(a, new byte[0x2000]));

        Assert.Equal(2, Pin(p.Mm!, a, 2, true, out PfnRun[] runs));

        Assert.DoesNotContain(runs, r => r.First == m.Memory.ZeroFrame!.Value);
        Assert.Equal(2UL, m.Memory.PinnedFrameCount);
        Assert.True(Translate(p.Mm!, a).Writable);
    }

    [Fact]
    public void PinReadOnly_MoreZeroPagesThanRunsUnderLinux61_StopsWhenTheRunsAreFull()
    {
        Machine m = NewMachine(Linux61);
        AddressSpace mm = m.Spawn("p").Mm!;
        ulong a = MmapAnon(mm, 0x100000);
        var buffer = new PfnRun[16];

        long got = Gup.PinUserPages(mm, new HostVirtAddr(a), 256, false, buffer, out int n);

        Assert.Equal(16, got);
        Assert.Equal(16, n);
        // The whole range was read-faulted in one go, and stays one run of zero PTEs.
        Assert.True(Translate(mm, a + 0xff000).ZeroPage);
    }
}
