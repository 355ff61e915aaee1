using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

// MAP_DMA steps 11-12: pin-and-map failures, no IOMMU domain, dirty-tracking bitmaps (spec §1.5).
public sealed partial class MapDmaTests
{
    // ---- 11. pin-and-map failures ----

    [Fact]
    public void MapDma_UnmappedVaddr_ReturnsEFAULT()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Sys.Munmap(buf, 1 * MiB));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 1 * MiB));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_WriteMappingOfReadOnlyMemory_ReturnsEFAULT()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapReadOnly(1 * MiB);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Write));
        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Read | DmaMapFlags.Write));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_ReadMappingOfReadOnlyMemory_Succeeds()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapReadOnly(1 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Read));

        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(256UL, t.PinnedFrames);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.True(d.Translate(new Iova(0), write: false).Ok);
        Assert.Equal(IommuFaultReason.WriteDenied, d.Translate(new Iova(0), write: true).Fault);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MapDma_SecondHalfUnmapped_ReturnsEFAULTAndLeavesNothing(bool scattered)
    {
        var t = new Type1TestHost(layout: scattered ? FrameLayout.ScatteredRuns(16, 7) : FrameLayout.Contiguous);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Sys.Munmap(buf + (2 * MiB), 2 * MiB));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 4 * MiB));

        AssertNothingMapped(t, c);
        // The first half is still mappable: the failure released every pin it took.
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(512UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_SecondHalfReadOnlyForWriteMapping_ReturnsEFAULTAndLeavesNothing()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB, populate: true);
        Assert.Equal(buf + (1 * MiB), (ulong)t.Sys.Mmap(buf + (1 * MiB), 1 * MiB, MemoryProtection.Read,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed, -1, 0));

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, 0, buf, 2 * MiB));

        AssertNothingMapped(t, c);
    }

    // ---- 11. no IOMMU domain: nothing pinned or charged ----

    [Fact]
    public void MapDma_OnlyMdevGroup_SucceedsWithoutPinningOrCharging()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        ulong buf = t.MmapAnonymous(4 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 4 * MiB));
        // No IOVA list without a domain: the x86 MSI window and addresses past 2^48 are accepted.
        Assert.Equal(0, t.Map(c, 0xfee00000, buf, 1 * MiB));
        Assert.Equal(0, t.Map(c, 1UL << 60, buf, 1 * MiB));

        Assert.Equal(3UL, t.Backend(c).MappingCount);
        Assert.Equal(65532UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void MapDma_OnlyMdevGroupUnmappedVaddr_SucceedsBecauseNothingIsPinned()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);

        Assert.Equal(0, t.Map(c, 0, 0x7000_0000_0000, 1 * MiB));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
    }

    // ---- 12. dirty tracking: the new mapping's bitmap ----

    [Fact]
    public void MapDma_DirtyTrackingBitmapOverIntMaxPages_ReturnsEINVALAndLeavesNothing()
    {
        // Without a domain nothing is pinned, so only the bitmap limit (INT_MAX pages) stops this MAP.
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong size = (ulong)int.MaxValue * t.PageSize;

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, 0x1000_0000_0000, size + t.PageSize));

        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0, t.Map(c, 0, 0x1000_0000_0000, 1 * MiB));
    }
}
