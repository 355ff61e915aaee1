using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// VFIO_IOMMU_DIRTY_PAGES (spec §1.7) and the dirty bitmaps of mappings (§3.11): the argument checks, START
/// and STOP, GET_BITMAP's range and bitmap checks, what lands in the user bitmap (word placement, adjacent
/// mappings, whole-word writes), UNMAP with GET_DIRTY_BITMAP, pinned-page scope, and the allocation sweep.
/// </summary>
public sealed partial class DirtyTrackingTests
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
