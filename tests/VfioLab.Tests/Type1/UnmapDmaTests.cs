using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>VFIO_IOMMU_UNMAP_DMA (spec §1.6, §3.13): the header checks in the kernel's order, the range
/// checks, the copy-back of <c>size</c>, UNMAP_ALL and the VADDR invalidation with its rollback.</summary>
public sealed class UnmapDmaTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Page = 0x1000;
    private const int Gpu = Type1TestHost.GpuGroup;

    [Fact]
    public void UnmapDma_BufferShorterThanHeader_ReturnsEFAULT()
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        var buf = new byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = 24, Iova = 0x10000, Size = 0x10000 }.Write(buf);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuUnmapDma, buf.AsSpan(0, 16)));

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(23u)]
    public void UnmapDma_ArgszBelow24_ReturnsEINVAL(uint argsz)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);

        Assert.Equal(Errno.EINVAL.AsReturn(), RawUnmap(t, c, argsz, DmaUnmapFlags.None, 0x10000, 0x10000).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(8u)]
    [InlineData(0x80000000u)]
    public void UnmapDma_UnknownFlag_ReturnsEINVAL(uint flag)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);

        Assert.Equal(Errno.EINVAL.AsReturn(), RawUnmap(t, c, 24, (DmaUnmapFlags)flag, 0x10000, 0x10000).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(DmaUnmapFlags.All)]
    [InlineData(DmaUnmapFlags.Vaddr)]
    public void UnmapDma_GetDirtyBitmapWithAllOrVaddr_ReturnsEINVAL(DmaUnmapFlags other)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);
        bool all = other == DmaUnmapFlags.All;

        (long ret, _) = UnmapWithBitmap(t, c, all ? 0UL : 0x10000, all ? 0UL : 0x10000, Bitmap(bm, 8), DmaUnmapFlags.GetDirtyBitmap | other);

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        AssertStillMapped(t, c, 1, 16);
        // Not invalidated either: a VADDR update of a valid mapping is refused.
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x10000, 0x7000_0000_0000, 0x10000, DmaMapFlags.Vaddr));
    }

    [Fact]
    public void UnmapDma_GetDirtyBitmapArgszBelow48_ReturnsEINVAL()
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);

        Assert.Equal(Errno.EINVAL.AsReturn(), UnmapWithBitmap(t, c, 0x10000, 0x10000, Bitmap(bm, 8), argsz: 47).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(24)]
    [InlineData(47)]
    public void UnmapDma_BitmapStructUnreadable_ReturnsEFAULT(int bufferLength)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);

        Assert.Equal(Errno.EFAULT.AsReturn(), UnmapWithBitmap(t, c, 0x10000, 0x10000, Bitmap(bm, 8), length: bufferLength).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(0x8000_0000_0000UL, 8UL)]
    [InlineData(0x7fff_ffff_fff8UL, 16UL)]
    [InlineData(0xffff_ffff_ffff_fff8UL, 16UL)]
    public void UnmapDma_BitmapBeyondUserSpace_ReturnsEINVAL(ulong data, ulong bitmapSize)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        Assert.Equal(Errno.EINVAL.AsReturn(), UnmapWithBitmap(t, c, 0x10000, 0x10000, Bitmap(data, bitmapSize)).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Fact]
    public void UnmapDma_BitmapPgsizeZero_ReturnsEINVAL()
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);

        Assert.Equal(Errno.EINVAL.AsReturn(), UnmapWithBitmap(t, c, 0x10000, 0x10000, new VfioBitmap { Pgsize = 0, Size = 8, Data = bm }).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(0x41000UL, 8UL)] // 65 pages need two words
    [InlineData(0x10000UL, 0UL)] // bitmap.size 0
    [InlineData(0x10000UL, (256UL << 20) + 8)] // past DIRTY_BITMAP_SIZE_MAX
    public void UnmapDma_BitmapSizeInvalid_ReturnsEINVAL(ulong size, ulong bitmapSize)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, size);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);

        Assert.Equal(Errno.EINVAL.AsReturn(), UnmapWithBitmap(t, c, 0x10000, size, Bitmap(bm, bitmapSize)).Ret);

        Assert.Equal(1UL, t.Backend(c).MappingCount);
    }

    [Fact]
    public void UnmapDma_BitmapExactly256MiB_UnmapsAndReports()
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x41000);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong bm = t.MmapAnonymous(Page);

        // access_ok only checks the range against the top of user space, not that 256 MiB are mapped.
        (long ret, ulong size) = UnmapWithBitmap(t, c, 0x10000, 0x41000, Bitmap(bm, 256UL << 20));

        Assert.Equal(0, ret);
        Assert.Equal(0x41000UL, size);
        Assert.Equal(new[] { ulong.MaxValue, 1UL }, t.ReadWords(bm, 2));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
    }

    [Theory]
    [InlineData(0x10800UL, 0x10000UL)]
    [InlineData(0x10000UL, 0x10800UL)]
    [InlineData(0x10000UL, 0UL)]
    public void UnmapDma_MisalignedOrEmpty_ReturnsEINVAL(ulong iova, ulong size)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);

        (long ret, ulong back) = t.Unmap(c, iova, size);

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal(size, back); // nothing copied back on failure
        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(0x10000UL, 0UL)]
    [InlineData(0UL, 0x10000UL)]
    [InlineData(0x10000UL, 0x10000UL)]
    public void UnmapDma_AllWithRange_ReturnsEINVAL(ulong iova, ulong size)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Unmap(c, iova, size, DmaUnmapFlags.All).Ret);

        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void UnmapDma_RangeWraps_ReturnsEOVERFLOW(string profile)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000, new KernelSettings(profile, []));

        (long ret, ulong back) = t.Unmap(c, 0xffff_ffff_ffff_f000, 0x2000);

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), ret);
        Assert.Equal(0x2000UL, back);
        AssertStillMapped(t, c, 1, 16);
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void UnmapDma_RangeEndsAtTopOfAddressSpace_SucceedsWithSizeZero(string profile)
    {
        (Type1TestHost t, int c) = Mapped(0x10000, 0x10000, new KernelSettings(profile, []));

        (long ret, ulong back) = t.Unmap(c, 0xffff_ffff_ffff_f000, 0x1000);

        Assert.Equal(0, ret);
        Assert.Equal(0UL, back);
        AssertStillMapped(t, c, 1, 16);
    }

    [Fact]
    public void UnmapDma_Success_CopiesBackOnlyTheHeaderWithUnmappedSize()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(MiB);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x40000, buf + 0x10000, 0x20000));
        var raw = new byte[40];
        raw.AsSpan().Fill(0xAA);
        new VfioIommuType1DmaUnmap { Argsz = 40, Flags = DmaUnmapFlags.None, Iova = 0, Size = 0x100000 }.Write(raw);

        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuUnmapDma, raw));

        Assert.True(VfioIommuType1DmaUnmap.TryRead(raw, out VfioIommuType1DmaUnmap back));
        Assert.Equal(40u, back.Argsz);
        Assert.Equal(DmaUnmapFlags.None, back.Flags);
        Assert.Equal(0UL, back.Iova);
        Assert.Equal(0x30000UL, back.Size);
        Assert.All(raw[24..], b => Assert.Equal(0xAA, b));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
    }

    [Fact]
    public void UnmapDma_VaddrWithMdevGroupAttached_ReturnsEBUSY()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.MdevGroup);
        ulong buf = t.MmapAnonymous(MiB);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));

        Assert.Equal(Errno.EBUSY.AsReturn(), t.Unmap(c, 0x10000, 0x10000, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal(Errno.EBUSY.AsReturn(), t.Unmap(c, 0, 0, DmaUnmapFlags.Vaddr | DmaUnmapFlags.All).Ret);
        // Checked before the alignment of the range.
        Assert.Equal(Errno.EBUSY.AsReturn(), t.Unmap(c, 0x10800, 0x10000, DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.Unmap(c, 0x10000, 0x10000).Ret);
    }

    [Fact]
    public void UnmapDma_VaddrOverAlreadyInvalidFirstMapping_ReturnsEINVALAndLeavesSecondValid()
    {
        (Type1TestHost t, int c, ulong buf) = TwoMappings();
        (long first, ulong firstSize) = t.Unmap(c, 0x10000, 0x10000, DmaUnmapFlags.Vaddr);
        Assert.Equal(0, first);
        Assert.Equal(0x10000UL, firstSize);

        (long ret, ulong back) = t.Unmap(c, 0x10000, 0x20000, DmaUnmapFlags.Vaddr);

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal(0x20000UL, back); // the kernel's size 0 is not copied back on failure
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x20000, buf + 0x10000, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.SetContainer(t.OpenGroup(Type1TestHost.NicGroup), c));
    }

    [Fact]
    public void UnmapDma_VaddrOverAlreadyInvalidSecondMapping_RollsBackTheFirstAndReturnsEINVAL()
    {
        (Type1TestHost t, int c, ulong buf) = TwoMappings();
        Assert.Equal(0, t.Unmap(c, 0x20000, 0x10000, DmaUnmapFlags.Vaddr).Ret);

        (long ret, ulong back) = t.Unmap(c, 0x10000, 0x20000, DmaUnmapFlags.Vaddr);

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal(0x20000UL, back);
        // A was invalidated by the failed call and must be valid again; B stays invalid.
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        int nic = t.OpenGroup(Type1TestHost.NicGroup);
        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(nic, c));
        Assert.Equal(0, t.Map(c, 0x20000, buf + 0x10000, 0x10000, DmaMapFlags.Vaddr));
        // Back to zero invalid mappings: attaching works again.
        Assert.Equal(0, t.SetContainer(nic, c));
        Assert.Equal(32UL, t.LockedVmPages);
        Assert.Equal(32UL, t.TotalPins);
    }

    [Fact]
    public void UnmapDma_VaddrBisectingAMapping_ReturnsEINVAL()
    {
        (Type1TestHost t, int c, ulong buf) = TwoMappings();

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Unmap(c, 0x10000, 0x18000, DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.SetContainer(t.OpenGroup(Type1TestHost.NicGroup), c));
    }

    [Fact]
    public void UnmapDma_All_RemovesEverythingAndReportsTheTotal()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(MiB);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x100000, buf + 0x10000, 0x30000));
        Assert.Equal(0, t.Map(c, 0xfff0_0000, buf + 0x40000, 0x1000));

        (long ret, ulong size) = t.Unmap(c, 0, 0, DmaUnmapFlags.All);

        Assert.Equal(0, ret);
        Assert.Equal(0x41000UL, size);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.DomainOf(Gpu)!.TotalEntries);
    }

    [Fact]
    public void UnmapDma_AllWithNoMappings_SucceedsWithSizeZero()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();

        Assert.Equal((0L, 0UL), t.Unmap(c, 0, 0, DmaUnmapFlags.All));
    }

    [Fact]
    public void UnmapDma_AllVaddr_InvalidatesEveryMappingAndKeepsThemMapped()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(MiB);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x100000, buf + 0x10000, 0x30000));
        ulong phys = t.DomainOf(Gpu)!.IovaToPhys(new Addressing.Iova(0x100000)).Value;

        (long ret, ulong size) = t.Unmap(c, 0, 0, DmaUnmapFlags.All | DmaUnmapFlags.Vaddr);

        Assert.Equal(0, ret);
        Assert.Equal(0x40000UL, size);
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(64UL, t.LockedVmPages);
        Assert.Equal(64UL, t.TotalPins);
        Assert.Equal(phys, t.DomainOf(Gpu)!.IovaToPhys(new Addressing.Iova(0x100000)).Value);
        // Every mapping is invalid: each takes exactly one VADDR update, a second is refused.
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.Map(c, 0x100000, buf + 0x10000, 0x30000, DmaMapFlags.Vaddr));
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x100000, buf + 0x10000, 0x30000, DmaMapFlags.Vaddr));
    }

    [Fact]
    public void UnmapDma_AllVaddrTwice_ReturnsEINVALAndKeepsEveryMappingInvalid()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(MiB);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x100000, buf + 0x10000, 0x30000));
        Assert.Equal(0, t.Unmap(c, 0, 0, DmaUnmapFlags.All | DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Unmap(c, 0, 0, DmaUnmapFlags.All | DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.Map(c, 0x100000, buf + 0x10000, 0x30000, DmaMapFlags.Vaddr));
    }

    [Fact]
    public void SetContainer_WhileVaddrsInvalid_ReturnsEBUSYUntilRevalidated()
    {
        (Type1TestHost t, int c, ulong buf) = TwoMappings();
        Assert.Equal(0, t.Unmap(c, 0, 0, DmaUnmapFlags.All | DmaUnmapFlags.Vaddr).Ret);
        int nic = t.OpenGroup(Type1TestHost.NicGroup);
        int mdev = t.OpenGroup(Type1TestHost.MdevGroup);

        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(nic, c));
        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(mdev, c));

        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000, DmaMapFlags.Vaddr));
        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(nic, c));
        // Removing the last invalid mapping also ends the restriction.
        Assert.Equal((0L, 0x10000UL), t.Unmap(c, 0x20000, 0x10000));
        Assert.Equal(0, t.SetContainer(nic, c));
        Assert.Same(t.DomainOf(Gpu), t.DomainOf(Type1TestHost.NicGroup));
    }

    private static (Type1TestHost Host, int Container) Mapped(ulong iova, ulong size, KernelSettings? kernel = null)
    {
        var t = new Type1TestHost(kernel: kernel);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(size);
        Assert.Equal(0, t.Map(c, iova, buf, size));
        return (t, c);
    }

    // A = [0x10000, 0x1ffff] and B = [0x20000, 0x2ffff], from consecutive user memory.
    private static (Type1TestHost Host, int Container, ulong Buffer) TwoMappings()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(0x20000);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x20000, buf + 0x10000, 0x10000));
        return (t, c, buf);
    }

    private static void AssertStillMapped(Type1TestHost t, int c, ulong mappings, ulong pages)
    {
        Assert.Equal(mappings, t.Backend(c).MappingCount);
        Assert.Equal(pages, t.LockedVmPages);
        Assert.Equal(pages, t.TotalPins);
        Assert.NotEqual(0UL, t.DomainOf(Gpu)!.TotalEntries);
    }

    private static VfioBitmap Bitmap(ulong data, ulong size) => new() { Pgsize = Page, Size = size, Data = data };

    private static (long Ret, ulong Size) RawUnmap(Type1TestHost t, int c, uint argsz, DmaUnmapFlags flags, ulong iova, ulong size)
    {
        var buf = new byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = argsz, Flags = flags, Iova = iova, Size = size }.Write(buf);
        long ret = t.Sys.Ioctl(c, VfioIoctl.IommuUnmapDma, buf);
        return (ret, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Size)));
    }

    private static (long Ret, ulong Size) UnmapWithBitmap(Type1TestHost t, int c, ulong iova, ulong size, VfioBitmap bitmap,
        DmaUnmapFlags flags = DmaUnmapFlags.GetDirtyBitmap, uint argsz = VfioIommuType1DmaUnmap.MinSizeWithBitmap,
        int length = VfioIommuType1DmaUnmap.MinSizeWithBitmap)
    {
        var buf = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
        new VfioIommuType1DmaUnmap { Argsz = argsz, Flags = flags, Iova = iova, Size = size }.Write(buf);
        bitmap.Write(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
        long ret = t.Sys.Ioctl(c, VfioIoctl.IommuUnmapDma, buf.AsSpan(0, length));
        return (ret, BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Size)));
    }
}
