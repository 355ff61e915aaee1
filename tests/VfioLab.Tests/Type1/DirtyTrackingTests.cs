using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// VFIO_IOMMU_DIRTY_PAGES (spec §1.7) and the dirty bitmaps of mappings (§3.11): the argument checks, START
/// and STOP, GET_BITMAP's range and bitmap checks, what lands in the user bitmap (word placement, adjacent
/// mappings, whole-word writes), UNMAP with GET_DIRTY_BITMAP, pinned-page scope, and the allocation sweep.
/// </summary>
public sealed class DirtyTrackingTests
{
    private const ulong Page = 0x1000;
    private const ulong Base = 0x100000;
    private const int Gpu = Type1TestHost.GpuGroup;
    private const int Mdev = Type1TestHost.MdevGroup;

    [Fact]
    public void DirtyPages_V1Container_ReturnsEACCESBeforeReadingTheArgument()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: VfioExtension.Type1Iommu);

        Assert.Equal(Errno.EACCES.AsReturn(), t.Dirty(c, DirtyPagesFlags.Start));
        Assert.Equal(Errno.EACCES.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, Span<byte>.Empty));
    }

    [Fact]
    public void DirtyPages_BufferShorterThanHeader_ReturnsEFAULT()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();
        var buf = new byte[8];
        new VfioIommuType1DirtyBitmap { Argsz = 8, Flags = DirtyPagesFlags.Start }.Write(buf);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, buf.AsSpan(0, 4)));

        AssertNotTracking(t, c);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(7u)]
    public void DirtyPages_ArgszBelow8_ReturnsEINVAL(uint argsz)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();

        Assert.Equal(Errno.EINVAL.AsReturn(), RawDirty(t, c, argsz, DirtyPagesFlags.Start));

        AssertNotTracking(t, c);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)] // START | STOP
    [InlineData(5u)] // START | GET_BITMAP
    [InlineData(6u)] // STOP | GET_BITMAP
    [InlineData(7u)]
    [InlineData(8u)] // unknown
    [InlineData(9u)] // START | unknown
    [InlineData(0x80000001u)]
    public void DirtyPages_NotExactlyOneKnownFlag_ReturnsEINVAL(uint flags)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();

        Assert.Equal(Errno.EINVAL.AsReturn(), RawDirty(t, c, 8, (DirtyPagesFlags)flags));

        AssertNotTracking(t, c);
    }

    [Fact]
    public void DirtyPages_StartTwice_SucceedsAndKeepsTheBitmaps()
    {
        (Type1TestHost t, int c, int gpu) = GpuAndMdevWithMapping();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        // The IOMMU-backed group leaving marks every page dirty in the mapping's bitmap.
        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        ulong bm = ZeroedBitmap(t);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0xFFFFUL, t.ReadWords(bm, 1)[0]);
    }

    [Fact]
    public void DirtyPages_StopWhenNotStarted_Succeeds()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();

        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Stop));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Stop));

        AssertNotTracking(t, c);
    }

    [Fact]
    public void DirtyPages_Stop_EndsTrackingAndDiscardsTheBitmaps()
    {
        (Type1TestHost t, int c, int gpu) = GpuAndMdevWithMapping();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Stop));

        ulong bm = ZeroedBitmap(t);
        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        FillBitmap(t, bm, 1, ulong.MaxValue);
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }

    [Theory]
    [InlineData(47u, 48)]
    [InlineData(8u, 48)]
    [InlineData(9u, 48)]
    public void GetBitmap_ArgszTooSmall_ReturnsEINVAL(uint argsz, int length)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8), argsz, length));

        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(47)]
    public void GetBitmap_RangeStructUnreadable_ReturnsEFAULT(int length)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EFAULT.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8), 48, length));
    }

    [Fact]
    public void GetBitmap_NotStarted_ReturnsEINVAL()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping();
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));

        Assert.Equal(0UL, t.ReadWords(bm, 1)[0]);
    }

    /// <summary>iova, size, bitmap pgsize, bitmap size: each request is invalid in one way only.</summary>
    [Theory]
    [InlineData(Base, 0x10000UL, 0x2000UL, 8UL)] // not the IOMMU's smallest page size
    [InlineData(Base, 0x10000UL, 0UL, 8UL)] // pgsize 0
    [InlineData(Base + 0x800, 0x10000UL, Page, 8UL)] // iova misaligned
    [InlineData(Base, 0x10800UL, Page, 8UL)] // size misaligned
    [InlineData(Base, 0UL, Page, 8UL)] // size 0
    [InlineData(Base + 0x8000, 0x8000UL, Page, 8UL)] // starts inside the mapping
    [InlineData(Base, 0x8000UL, Page, 8UL)] // ends inside the mapping
    [InlineData(Base - 0x10000, 0x18000UL, Page, 8UL)] // from before the mapping to inside it
    [InlineData(Base, 0x41000UL, Page, 8UL)] // 65 pages need two words
    [InlineData(Base, 0x10000UL, Page, 0UL)] // bitmap size 0
    [InlineData(Base, 0x10000UL, Page, (256UL << 20) + 8)] // past DIRTY_BITMAP_SIZE_MAX
    public void GetBitmap_InvalidRangeOrBitmap_ReturnsEINVAL(ulong iova, ulong size, ulong pgsize, ulong bitmapSize)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, iova, size, new VfioBitmap { Pgsize = pgsize, Size = bitmapSize, Data = bm }));

        Assert.Equal(new ulong[2], t.ReadWords(bm, 2));
    }

    [Theory]
    [InlineData(0x8000_0000_0000UL, 8UL)]
    [InlineData(0x7fff_ffff_fff8UL, 16UL)]
    [InlineData(0xffff_ffff_ffff_fff8UL, 16UL)]
    public void GetBitmap_BitmapBeyondUserSpace_ReturnsEINVAL(ulong data, ulong bitmapSize)
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);

        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(data, bitmapSize)));
    }

    [Fact]
    public void GetBitmap_BitmapMemoryNotMapped_ReturnsEFAULT()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong hole = t.MmapAnonymous(Page);
        Assert.Equal(0, t.Sys.Munmap(hole, Page));

        Assert.Equal(Errno.EFAULT.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(hole, 8)));
    }

    [Fact]
    public void GetBitmap_BitmapMemoryReadOnly_ReturnsEFAULT()
    {
        (Type1TestHost t, int c, _) = Gpu1Mapping(start: true);
        ulong ro = t.MmapReadOnly(Page);

        Assert.Equal(Errno.EFAULT.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(ro, 8)));
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void GetBitmap_RangeWraps_ReturnsEOVERFLOW(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = ZeroedBitmap(t);

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), GetBitmap(t, c, 0xffff_ffff_ffff_f000, 0x2000, Bitmap(bm, 8)));
    }

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
            t.Host.Faults.Arm(n, "bitmap_alloc");

            Assert.Equal(Errno.ENOMEM.AsReturn(), t.Dirty(c, DirtyPagesFlags.Start));

            Assert.True(t.Host.Faults.Fired, $"n={n}");
            t.Host.Faults.Arm(0);
            Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x30000, Bitmap(bm, 8)));
            Assert.Equal(3UL, t.Backend(c).MappingCount);
            Assert.Equal(48UL, t.TotalPins);
            Assert.Equal(48UL, t.LockedVmPages);
        }

        t.Host.Faults.Arm(4, "bitmap_alloc");
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
        t.Host.Faults.Arm(1, "bitmap_alloc");

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
    private static (Type1TestHost Host, int Container, ulong Buffer) Gpu1Mapping(bool start = false)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
        if (start)
        {
            Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        }
        return (t, c, buf);
    }

    // GPU and mdev in one container with a 16-page mapping at Base; returns the GPU group's fd.
    private static (Type1TestHost Host, int Container, int GpuFd) GpuAndMdevWithMapping()
    {
        var t = new Type1TestHost();
        (int c, int gpu) = t.Container();
        t.AddGroup(c, Mdev);
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, Base, buf, 0x10000));
        return (t, c, gpu);
    }

    // Tracking is off: GET_BITMAP refuses a valid request, which START then makes succeed.
    private static void AssertNotTracking(Type1TestHost t, int c)
    {
        ulong bm = ZeroedBitmap(t);
        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        Assert.Equal(0, GetBitmap(t, c, Base, 0x10000, Bitmap(bm, 8)));
    }

    private static ulong ZeroedBitmap(Type1TestHost t) => t.MmapAnonymous(Page);

    private static void FillBitmap(Type1TestHost t, ulong address, int words, ulong value)
    {
        var bytes = new byte[words * 8];
        for (int i = 0; i < words; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * 8), value);
        }
        Assert.Equal(0, t.Sys.WriteMemory(address, bytes));
    }

    private static VfioBitmap Bitmap(ulong data, ulong size) => new() { Pgsize = Page, Size = size, Data = data };

    private static long RawDirty(Type1TestHost t, int c, uint argsz, DirtyPagesFlags flags)
    {
        var buf = new byte[VfioIommuType1DirtyBitmap.SizeOf];
        new VfioIommuType1DirtyBitmap { Argsz = argsz, Flags = flags }.Write(buf);
        return t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, buf);
    }

    private static long GetBitmap(Type1TestHost t, int c, ulong iova, ulong size, VfioBitmap bitmap,
        uint argsz = VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap, int length = VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap)
    {
        var buf = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = argsz, Flags = DirtyPagesFlags.GetBitmap }.Write(buf);
        new VfioIommuType1DirtyBitmapGet { Iova = iova, Size = size, Bitmap = bitmap }.Write(buf.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
        return t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, buf.AsSpan(0, length));
    }

    private static (long Ret, ulong Size) UnmapWithBitmap(Type1TestHost t, int c, ulong iova, ulong size, VfioBitmap bitmap)
    {
        var buf = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
        new VfioIommuType1DmaUnmap { Argsz = (uint)buf.Length, Flags = DmaUnmapFlags.GetDirtyBitmap, Iova = iova, Size = size }.Write(buf);
        bitmap.Write(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
        long ret = t.Sys.Ioctl(c, VfioIoctl.IommuUnmapDma, buf);
        return (ret, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Size)));
    }
}
