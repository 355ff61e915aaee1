using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

public class PhysicalMemoryAllocationTests
{
    [Fact]
    public void TryAllocateRun_Contiguous_HandsOutLowestFramesInOrder()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(10, out PfnRun a));
        Assert.True(mem.TryAllocateRun(10, out PfnRun b));
        Assert.Equal(new PfnRun(new Pfn(0), 10), a);
        Assert.Equal(new PfnRun(new Pfn(10), 10), b);
        Assert.Equal(256UL - 20, mem.FreeFrameCount);
    }

    [Fact]
    public void TryAllocateRun_Scattered_RunsBreakEveryRunPagesAndAreDeterministic()
    {
        static List<PfnRun> Allocate()
        {
            var mem = new PhysicalMemory(12, 4UL << 20, FrameLayout.ScatteredRuns(16, 7));
            var runs = new List<PfnRun>();
            ulong left = 64;
            while (left > 0)
            {
                Assert.True(mem.TryAllocateRun(left, out PfnRun r));
                runs.Add(r);
                left -= r.Count;
            }
            return runs;
        }
        List<PfnRun> first = Allocate();
        Assert.Equal(4, first.Count);
        Assert.All(first, r => Assert.Equal(16UL, r.Count));
        Assert.All(first, r => Assert.Equal(0UL, r.First.Value % 16));
        Assert.Contains(first.Zip(first.Skip(1)), p => p.First.Last.Value + 1 != p.Second.First.Value);
        Assert.Equal(first, Allocate());
    }

    [Fact]
    public void TryAllocateRun_RamExhausted_ReturnsFalse()
    {
        var mem = new PhysicalMemory(12, 16 * 4096, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(100, out PfnRun r));
        Assert.Equal(16UL, r.Count);
        Assert.False(mem.TryAllocateRun(1, out _));
    }

    [Fact]
    public void TryAllocateHuge_AfterSmallAllocation_ReturnsNaturallyAlignedBlock()
    {
        var mem = new PhysicalMemory(12, 8UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(1, out _));
        Assert.True(mem.TryAllocateHuge(512, out Pfn block));
        Assert.Equal(512UL, block.Value);
        Assert.Equal(1UL, mem.RefCount(block.Plus(511)));
    }

    [Fact]
    public void Reserve_FrameIsReservedOrInvalid_AndMmioIsInvalid()
    {
        var mem = new PhysicalMemory(16, 64UL << 20, FrameLayout.Contiguous);
        Assert.Equal(65536UL, mem.PageSize);
        mem.Reserve(new Pfn(0), 4);
        Assert.True(mem.IsReservedOrInvalid(new Pfn(3)));
        Assert.False(mem.IsReservedOrInvalid(new Pfn(4)));
        Assert.True(mem.IsReservedOrInvalid(new Pfn(mem.FrameCount)));
        Assert.True(mem.TryAllocateRun(1, out PfnRun r));
        Assert.Equal(4UL, r.First.Value);
    }

    [Fact]
    public void CountReservedOrInvalid_BeforeAndAfterTheFirstReserve_CountsReservedFramesAndFramesPastRam()
    {
        // Until a frame is reserved the test is the range check alone (no lock, no lookup): the counts must
        // be those of the full lookup on either side of the first Reserve.
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.Equal(256UL, mem.FrameCount);
        Assert.Equal(0UL, mem.CountReservedOrInvalid(new Pfn(0), 256));
        Assert.Equal(4UL, mem.CountReservedOrInvalid(new Pfn(254), 6));
        Assert.False(mem.IsReservedOrInvalid(new Pfn(20)));
        mem.Reserve(new Pfn(16), 8);
        Assert.True(mem.IsReservedOrInvalid(new Pfn(20)));
        Assert.False(mem.IsReservedOrInvalid(new Pfn(24)));
        Assert.Equal(8UL, mem.CountReservedOrInvalid(new Pfn(0), 256));
        Assert.Equal(3UL, mem.CountReservedOrInvalid(new Pfn(21), 10));
        Assert.Equal(12UL, mem.CountReservedOrInvalid(new Pfn(16), 244));
    }
}

public class PhysicalMemoryPinTests
{
    [Fact]
    public void Pin_OverlappingRanges_CountsPerFrameAndDistinctFrames()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(100, out _));
        mem.Pin(new Pfn(10), 10);
        mem.Pin(new Pfn(15), 10);
        Assert.Equal(2UL, mem.PinCount(new Pfn(17)));
        Assert.Equal(1UL, mem.PinCount(new Pfn(10)));
        Assert.Equal(15UL, mem.PinnedFrameCount);
        Assert.Equal(20UL, mem.TotalPins);
        mem.Unpin(new Pfn(10), 10, markDirty: true);
        Assert.Equal(10UL, mem.PinnedFrameCount);
        Assert.True(mem.IsDirty(new Pfn(12)));
        mem.Unpin(new Pfn(15), 10);
        Assert.Equal(0UL, mem.TotalPins);
        Assert.Equal(0UL, mem.PinnedFrameCount);
    }

    [Fact]
    public void Unpin_LastPinOfUnreferencedFrame_FreesIt()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(4, out PfnRun r));
        mem.Pin(r.First, 4);
        mem.DropRefs(r);
        Assert.Equal(256UL - 4, mem.FreeFrameCount);
        mem.Unpin(r.First, 4);
        Assert.Equal(256UL, mem.FreeFrameCount);
    }

#if DEBUG
    // Pinning a free frame is a caller bug, checked in debug builds only (DebugAssertPinnableLocked: in release builds
    // the check cost a descent of the free map per pinned run).
    [Fact]
    public void Pin_UnallocatedFrame_Throws()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.Throws<InvalidOperationException>(() => mem.Pin(new Pfn(3), 1));
    }
#endif
}

public class PhysicalMemoryContentTests
{
    [Fact]
    public void Read_Unwritten_ReturnsZerosAndStoresNothing()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        byte[] buf = [1, 2, 3];
        Assert.True(mem.Read(new PhysAddr(0x1000), buf));
        Assert.Equal(new byte[3], buf);
        Assert.Equal(0UL, mem.StoredContentBytes);
    }

    [Fact]
    public void Write_AcrossFrames_ReadsBack()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        byte[] data = Enumerable.Range(0, 10000).Select(i => (byte)i).ToArray();
        Assert.True(mem.Write(new PhysAddr(0xff0), data));
        byte[] back = new byte[data.Length];
        Assert.True(mem.Read(new PhysAddr(0xff0), back));
        Assert.Equal(data, back);
        Assert.False(mem.Write(new PhysAddr((1UL << 20) - 1), data));
    }

    [Fact]
    public void DropRefs_LastReference_ZeroesContents()
    {
        var mem = new PhysicalMemory(12, 1UL << 20, FrameLayout.Contiguous);
        Assert.True(mem.TryAllocateRun(1, out PfnRun r));
        mem.Write(r.First.ToPhys(12), [0xab]);
        mem.DropRefs(r);
        byte[] b = new byte[1];
        mem.Read(r.First.ToPhys(12), b);
        Assert.Equal(0, b[0]);
        Assert.Equal(0UL, mem.StoredContentBytes);
    }
}
