using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

// UNMAP with GET_DIRTY_BITMAP, and allocation failures while tracking (spec §1.6, §1.7).
public sealed partial class DirtyTrackingTests
{
    [Fact]
    public void UnmapDma_GetDirtyBitmap_ReportsAndRemovesTheMappings()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x100000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x4000)); // pages 0-3
        Assert.Equal(0, t.Map(c, Base + 0x10000, buf + 0x10000, 0x2000)); // pages 16-17
        Assert.Equal(0, t.Map(c, Base + 0x40000, buf + 0x20000, 0x1000)); // outside the range
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = ZeroedBitmap(t);

        (long ret, ulong size) = UnmapWithBitmap(t, c, Base, 0x20000, Bitmap(bm, 8));

        Assert.Equal(0, ret);
        Assert.Equal(0x6000UL, size);
        Assert.Equal(0x3000FUL, t.ReadWords(bm, 1)[0]);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(1UL, t.TotalPins);
        Assert.Equal(1UL, t.LockedVmPages);
    }

    [Fact]
    public void UnmapDma_GetDirtyBitmapWithoutTracking_ReturnsEINVAL()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();
        ulong bm = ZeroedBitmap(t);

        (long ret, ulong size) = UnmapWithBitmap(t, c, Base, 0x10000, Bitmap(bm, 8));

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal(0x10000UL, size);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(16UL, t.TotalPins);
        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void UnmapDma_GetDirtyBitmapWithOtherPageSize_ReturnsEINVAL()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EINVAL.AsReturn(), UnmapWithBitmap(t, c, Base, 0x10000, new VfioBitmap { Pgsize = 0x2000, Size = 8, Data = bm }).Ret);

        Assert.Equal(1UL, t.Backend(c).MappingCount);
    }

    [Fact]
    public void UnmapDma_GetDirtyBitmapFaultsOnSecondMapping_ReturnsEFAULTAndKeepsTheFirstRemoved()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, Page)); // bit 0: word 0
        Assert.Equal(0, t.Map(c, Base + (64 * Page), buf + Page, Page)); // bit 64: word 1
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong two = t.MmapAnonymous(2 * Page);
        Assert.Equal(0, t.Sys.Munmap(two + Page, Page));
        ulong data = two + Page - 8; // word 0 is the last of the mapped page, word 1 is not mapped

        (long ret, ulong size) = UnmapWithBitmap(t, c, Base, 0x80000, Bitmap(data, 16));

        Assert.Equal(Errno.EFAULT.AsReturn(), ret);
        Assert.Equal(0x80000UL, size);
        Assert.Equal(1UL, t.ReadWords(data, 1)[0]);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(1UL, t.TotalPins);
        Assert.Equal(0, t.Map(c, Base, buf, Page));
        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, Base + (64 * Page), buf + Page, Page));
    }

    [Fact]
    public void StartDirtyTracking_BitmapAllocFailsNth_ReturnsENOMEMAndLeavesTrackingOff()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x30000);
        for (ulong i = 0; i < 3; i++)
        {
            Assert.Equal(0, t.Map(c, Base + (i * 0x10000), buf + (i * 0x10000), 0x10000));
        }
        ulong bm = ZeroedBitmap(t);

        for (int n = 1; n <= 3; n++)
        {
            t.Host.Faults.Arm(n, FaultSite.BitmapAlloc);

            Assert.Equal(Errno.ENOMEM.AsReturn(), t.Dirty(c, DirtyPagesFlags.Start));

            Assert.True(t.Host.Faults.Fired, $"n={n}");
            t.Host.Faults.Arm(0);
            Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x30000, Bitmap(bm, 8)));
            Assert.Equal(3UL, t.Backend(c).MappingCount);
            Assert.Equal(48UL, t.TotalPins);
            Assert.Equal(48UL, t.LockedVmPages);
        }

        t.Host.Faults.Arm(4, FaultSite.BitmapAlloc);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        Assert.False(t.Host.Faults.Fired);
        Assert.Equal(3, t.Host.Faults.Calls);
        t.Host.Faults.Arm(0);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x30000, Bitmap(bm, 8)));
        Assert.Equal(0xFFFF_FFFF_FFFFUL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void MapDma_BitmapAllocFailsWhileTracking_ReturnsENOMEMAndLeavesNothing()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong buf = t.MmapAnonymous(0x10000);
        t.Host.Faults.Arm(1, FaultSite.BitmapAlloc);

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, Base, buf, 0x10000));

        t.Host.Faults.Arm(0);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.DomainOf(Gpu)!.TotalEntries);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
    }

    // One 16-page mapping at Base in a GPU container, tracking optionally started.
}
