using VfioLab.Abi;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// Pinned-page dirty scope (spec §3.11): with only emulated groups a mapping's dirty pages are exactly what was
/// pinned (dirty while pinned, and once more after the unpin until reported) or written through vfio_dma_rw; an
/// IOMMU-backed group outside the scope makes every page of every mapping dirty; detaching it while tracking
/// marks everything dirty once, after which the scope is precise again.
/// </summary>
public sealed class PinnedDirtyScopeTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Iova = 0x100000;

    [Fact]
    public void GetBitmap_OnlyEmulatedGroups_ReportsPinnedAndWrittenPagesOnly()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(Iova, 1 * MiB);
        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));

        Assert.Equal(2, m.Pin(Iova + 0x3000, 2));
        Assert.Equal(Errno.None, m.Rw(Iova + 0x40ff0, new byte[0x20], write: true));
        Assert.Equal(Errno.None, m.Rw(Iova + 0x80000, new byte[0x20], write: false));

        ulong[] words = Report(m);
        Assert.Equal(Bits(3, 4), words[0]);
        Assert.Equal(Bits(0, 1), words[1]);
        Assert.All(words.Skip(2), w => Assert.Equal(0UL, w));
        m.AssertClean();

        // Reported: the written pages are clean again, the pinned ones stay dirty while pinned.
        words = Report(m);
        Assert.Equal(Bits(3, 4), words[0]);
        Assert.Equal(0UL, words[1]);

        // Unpinned: still dirty once more (set when pinned), then clean.
        Assert.True(m.Unpin(Iova + 0x3000, 2));
        Assert.Equal(Bits(3, 4), Report(m)[0]);
        Assert.Equal(0UL, Report(m)[0]);
        m.AssertClean();
    }

    [Fact]
    public void StartDirtyTracking_ExistingPins_SeedTheBitmap()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(Iova, 1 * MiB);
        Assert.Equal(1, m.Pin(Iova + 0x5000, 1));

        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));

        Assert.Equal(Bits(5), Report(m)[0]);
        m.AssertClean();
    }

    [Fact]
    public void GetBitmap_IommuBackedGroupOutsideScope_ReportsEveryPage()
    {
        var m = new MdevTestHost(new Type1TestHost(), withGpu: true);
        m.Map(Iova, 1 * MiB);
        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));
        Assert.Equal(1, m.Pin(Iova, 1));

        Assert.All(Report(m), w => Assert.Equal(ulong.MaxValue, w));
        Assert.Equal(1, m.Backend.Snapshot().NumNonPinnedGroups);
        m.AssertClean();
    }

    [Fact]
    public void DetachGroupOutsideScope_WhileTracking_MarksEverythingDirtyOnceThenPrecise()
    {
        var m = new MdevTestHost(new Type1TestHost(), withGpu: true);
        m.Map(Iova, 1 * MiB);
        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));
        Assert.Equal(1, m.Pin(Iova + 0x2000, 1));
        _ = Report(m);

        Assert.Equal(0, m.T.UnsetContainer(m.GpuGroupFd));

        Assert.Equal(0, m.Backend.Snapshot().NumNonPinnedGroups);
        Assert.All(Report(m), w => Assert.Equal(ulong.MaxValue, w));
        ulong[] after = Report(m);
        Assert.Equal(Bits(2), after[0]);
        Assert.All(after.Skip(1), w => Assert.Equal(0UL, w));
        m.AssertClean();
    }

    [Fact]
    public void UnmapWithBitmap_PinnedMapping_DeviceUnpinsAndThePinnedPagesAreReported()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(Iova, 1 * MiB);
        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));
        Assert.Equal(3, m.Pin(Iova + 0x1000, 3));
        ulong bitmap = m.T.MmapAnonymous(0x1000);

        var buf = new byte[VfioIommuType1DmaUnmap.MinSizeWithBitmap];
        new VfioIommuType1DmaUnmap { Argsz = (uint)buf.Length, Flags = DmaUnmapFlags.GetDirtyBitmap, Iova = Iova, Size = 1 * MiB }.Write(buf);
        new VfioBitmap { Pgsize = m.PageSize, Size = 32, Data = bitmap }.Write(buf.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
        Assert.Equal(0, m.T.Sys.Ioctl(m.Container, VfioIoctl.IommuUnmapDma, buf));

        Assert.Equal(1, m.Driver.Notifications);
        Assert.Equal(Bits(1, 2, 3), m.T.ReadWords(bitmap, 1)[0]);
        Assert.Empty(m.Backend.Snapshot().Mappings);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinnedPageCleanWhileTracking_IsReportedAsVpfnInconsistent()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(Iova, 1 * MiB);
        Assert.Equal(0, m.T.Dirty(m.Container, DirtyPagesFlags.Start));
        Assert.Equal(1, m.Pin(Iova + 0x7000, 1));

        m.Backend.TestHooks.ClearDirtyBitForTest(Iova + 0x7000);

        Assert.Equal(["vpfn-consistent"], m.Violations());
    }

    // GET_BITMAP over the 1 MiB mapping at Iova into fresh zeroed memory; the words written.
    private static ulong[] Report(MdevTestHost m)
    {
        ulong bytes = 1 * MiB / m.PageSize / 8;
        ulong bitmap = m.T.MmapAnonymous(0x1000);
        var buf = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = (uint)buf.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(buf);
        new VfioIommuType1DirtyBitmapGet { Iova = Iova, Size = 1 * MiB, Bitmap = new VfioBitmap { Pgsize = m.PageSize, Size = bytes, Data = bitmap } }
            .Write(buf.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
        Assert.Equal(0, m.T.Sys.Ioctl(m.Container, VfioIoctl.IommuDirtyPages, buf));
        return m.T.ReadWords(bitmap, (int)(bytes / 8));
    }

    private static ulong Bits(params int[] pages)
    {
        ulong w = 0;
        foreach (int p in pages)
        {
            w |= 1UL << p;
        }
        return w;
    }
}
