using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

// What GET_BITMAP writes: offsets, shared words, whole words, pinned scope, detach (spec §3.11).
public sealed partial class DirtyTrackingTests
{
    [Fact]
    public void GetBitmap_IommuBackedGroup_ReportsEveryPageOfEveryMappingAtItsOffset()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x100000);
        Assert.Equal(0, t.Map(c, Base + 0x5000, buf, 0x3000)); // pages 5-7
        Assert.Equal(0, t.Map(c, Base + 0x10000, buf + 0x10000, 0x4000)); // pages 16-19
        Assert.Equal(0, t.Map(c, Base + 0x46000, buf + 0x20000, 0x2000)); // pages 70-71
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(0, GetBitmap(t, c, Base, 0x80000, Bitmap(bm, 16)));

        Assert.Equal(new[] { 0xF00E0UL, 0xC0UL }, t.ReadWords(bm, 2));
        // The device could write again at any time: the next report is the same.
        FillBitmap(t, bm, 2, 0);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x80000, Bitmap(bm, 16)));
        Assert.Equal(new[] { 0xF00E0UL, 0xC0UL }, t.ReadWords(bm, 2));
    }

    [Fact]
    public void GetBitmap_SecondMappingStartsMidWord_KeepsTheFirstMappingsBits()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x100000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x8000)); // pages 0-7
        Assert.Equal(0, t.Map(c, Base + 0x8000, buf + 0x8000, 0x4000)); // pages 8-11, same word
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(0, GetBitmap(t, c, Base, 0x40000, Bitmap(bm, 8)));

        Assert.Equal(0xFFFUL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void GetBitmap_WholeWordsWritten_BitsPastTheMappingZeroedAndGapsUntouched()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x100000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x4000)); // pages 0-3
        Assert.Equal(0, t.Map(c, Base + 0x80000, buf + 0x10000, 0x46000)); // pages 128-197
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);
        FillBitmap(t, bm, 5, ulong.MaxValue);

        // 256 pages: four words; words 1 (a gap) and 4 (past the bitmap) are not written.
        Assert.Equal(0, GetBitmap(t, c, Base, 0x100000, Bitmap(bm, 32)));

        Assert.Equal(new[] { 0xFUL, ulong.MaxValue, ulong.MaxValue, 0x3FUL, ulong.MaxValue }, t.ReadWords(bm, 5));
    }

    [Fact]
    public void GetBitmap_MappingStartsMidWord_OrsTheWholeFirstUserWordAndZeroesPastItsEnd()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x100000);
        Assert.Equal(0, t.Map(c, Base + 0x3c000, buf, 0x8000)); // pages 60-67: bit 60 of word 0 to bit 3 of word 1
        Assert.Equal(0, t.Map(c, Base + 0x86000, buf + 0x10000, 0x4000)); // pages 134-137: bits 6-9 of word 2
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);
        FillBitmap(t, bm, 4, 0x5555_5555_5555_5555);

        Assert.Equal(0, GetBitmap(t, c, Base, 0x100000, Bitmap(bm, 32)));

        // update_user_bitmap ORs the whole first target word (bitmap_or over BITS_TO_LONGS(shift) words),
        // not only the bits below the mapping; later words are the mapping's own, so they end in zeros.
        Assert.Equal(new[] { 0xF555_5555_5555_5555UL, 0xFUL, 0x5555_5555_5555_57D5UL, 0x5555_5555_5555_5555UL }, t.ReadWords(bm, 4));
    }

    [Fact]
    public void GetBitmap_MappingCreatedWhileTracking_IsReported()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));

        Assert.Equal(0xFFFFUL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void GetBitmap_OnlyMdevGroup_ReportsNothingDirty()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Mdev);
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);
        FillBitmap(t, bm, 1, ulong.MaxValue);

        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));

        // Written (the 1s are gone) and clean: an mdev dirties only what it pins or writes.
        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void DetachGroup_IommuGroupWhileTracking_MarksEverythingDirtyOnce()
    {
        (Type1TestHost t, int c, int gpu) = GpuAndMdevWithMapping();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
        ulong bm = ZeroedBitmap(t);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0xFFFFUL, t.ReadWords(bm, 1)[0]);
        // Reported bits are reset to the externally pinned pages (none).
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void DetachGroup_OneOfTwoGroupsInADomainWhileTracking_KeepsMappingsAndStillReportsAllDirty()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        int nic = t.AddGroup(c, Type1TestHost.NicGroup);
        Assert.Same(t.DomainOf(Gpu), t.DomainOf(Type1TestHost.NicGroup));
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        Assert.Equal(0, t.UnsetContainer(nic));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(16UL, t.TotalPins);
        Assert.True(t.DomainOf(Gpu)!.Translate(new Addressing.Iova(Base), write: true).Ok);
        // The GPU is still outside pinned scope: every report is all dirty, not just the first.
        ulong bm = ZeroedBitmap(t);
        for (int i = 0; i < 2; i++)
        {
            FillBitmap(t, bm, 1, 0);
            Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
            Assert.Equal(0xFFFFUL, t.ReadWords(bm, 1)[0]);
        }
    }

    [Fact]
    public void DetachGroup_IommuGroupBeforeTracking_LeavesNothingDirty()
    {
        (Type1TestHost t, int c, int gpu) = GpuAndMdevWithMapping();
        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        ulong bm = t.MmapAnonymous(Page);
        FillBitmap(t, bm, 1, ulong.MaxValue);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }
}
