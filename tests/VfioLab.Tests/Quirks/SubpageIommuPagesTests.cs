using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Quirks;

/// <summary>Quirk <c>subpage-iommu-pages</c> (seed 000, the 2015 RFC): on a 64 KiB-page host behind a 4 KiB SMMU,
/// GET_INFO advertises the SMMU's 4 KiB, while MAP and UNMAP still demand PAGE_SIZE alignment; today the 4 KiB bit is
/// folded into 64 KiB (spec §2.6). Either way one host page is pinned and charged once.</summary>
public sealed class SubpageIommuPagesTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Smmu4KPgsizes = PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;
    private const ulong VtDPgsizes = PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;
    private const ulong Folded64KPgsizes = PageSizeBitmap.Size64K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;

    private static readonly string[] Quirk = [KernelSettings.QuirkSubpageIommuPages];

    // A 64 KiB-page arm64 host whose SMMUv3 offers 4K|2M|1G.
    private static Type1TestHost Arm64K(bool quirk) => QuirkCalls.Host(quirk ? Quirk : [], pageShift: 16, iommu: IommuHardwareProfile.SmmuV3);

    [Fact]
    public void GetInfo_64KHostWith4KIommu_Today_AdvertisesPageSizeAsMinimumAndChecksClean()
    {
        Type1TestHost t = Arm64K(quirk: false);
        (int c, _) = t.Container();

        (ulong pgsizes, ulong migration) = Info(t, c);

        Assert.Equal(Folded64KPgsizes, pgsizes);
        Assert.Equal(64 * KiB, migration);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void GetInfo_64KHostWith4KIommu_SubpageIommuPages_Advertises4KAndBreaksPgsizeBitmap()
    {
        Type1TestHost t = Arm64K(quirk: true);
        (int c, _) = t.Container();

        (ulong pgsizes, ulong migration) = Info(t, c);

        // Not folded: the 4 KiB bit stays and no 64 KiB bit is added.
        Assert.Equal(Smmu4KPgsizes, pgsizes);
        Assert.Equal(4 * KiB, migration);
        Assert.Equal(Smmu4KPgsizes, t.Backend(c).PgsizeBitmap);
        Assert.Equal(["pgsize-bitmap"], QuirkCalls.Violations(t));
        InvariantViolation v = Assert.Single(new InvariantChecker(t.Host).Check());
        Assert.Contains("offers 0x1000, below PAGE_SIZE 0x10000", v.Message);
        Assert.Contains("expected 64K|2M|1G", v.Message);
    }

    [Theory]
    [InlineData(false, 0x1000UL, 0x0UL, 0x1000UL)]
    [InlineData(true, 0x1000UL, 0x0UL, 0x1000UL)]
    [InlineData(false, 0x10000UL, 0x0UL, 0x1000UL)]
    [InlineData(true, 0x10000UL, 0x0UL, 0x1000UL)]
    [InlineData(false, 0x10000UL, 0x1000UL, 0x10000UL)]
    [InlineData(true, 0x10000UL, 0x1000UL, 0x10000UL)]
    [InlineData(true, 0x11000UL, 0x0UL, 0x10000UL)]
    public void MapDma_4KGranularRequest_EitherWay_ReturnsEINVALAndMapsNothing(bool quirk, ulong iova, ulong vaddrOffset, ulong size)
    {
        Type1TestHost t = Arm64K(quirk);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);

        // A user trusting the advertised 4 KiB is refused: the RFC kept PAGE_SIZE alignment.
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, iova, mem + vaddrOffset, size));

        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MapDma_64KGranular_EitherWay_PinsAndChargesEachHostPageOnce(bool quirk)
    {
        Type1TestHost t = Arm64K(quirk);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0x10000, mem, 1 * MiB));

        // 16 host pages: each pinned once, charged once, translated by sixteen 4 KiB IOPTEs.
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(16UL, t.PinnedFrames);
        Assert.Equal(16UL, t.TotalPins);
        Assert.Equal(16UL, t.LockedVmPages);
        Assert.Equal(256UL, d.EntryCount(4 * KiB));
        Assert.Equal(256UL, d.TotalEntries);
        Assert.Equal(quirk ? ["pgsize-bitmap"] : [], QuirkCalls.Violations(t));

        // UNMAP keeps PAGE_SIZE alignment too: nothing is copied back and the mapping is untouched.
        Assert.Equal((Errno.EINVAL.AsReturn(), 4 * KiB), t.Unmap(c, 0x10000, 4 * KiB));
        Assert.Equal((Errno.EINVAL.AsReturn(), 64 * KiB), t.Unmap(c, 0x11000, 64 * KiB));
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(16UL, t.TotalPins);

        Assert.Equal((0L, 1 * MiB), t.Unmap(c, 0x10000, 1 * MiB));
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, d.TotalEntries);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DirtyGetBitmap_EitherWay_GranularityIsPageSize(bool quirk)
    {
        Type1TestHost t = Arm64K(quirk);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, mem, 1 * MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        ulong data = t.MmapAnonymous(64 * KiB);

        // The migration capability says 4 KiB under the quirk, but the bitmaps count 64 KiB host pages.
        Assert.Equal(Errno.EINVAL.AsReturn(), GetBitmap(t, c, 0, 1 * MiB, 4 * KiB, data));
        Assert.Equal(0, GetBitmap(t, c, 0, 1 * MiB, 64 * KiB, data));

        // 16 pages pinned by the IOMMU-backed group: all dirty, one bit each.
        Assert.Equal([0xffffUL], t.ReadWords(data, 1));
        Assert.Equal(quirk ? ["pgsize-bitmap"] : [], QuirkCalls.Violations(t));
    }

    [Fact]
    public void GetInfo_NoDomain_SubpageIommuPages_AdvertisesEverySize()
    {
        Type1TestHost today = Arm64K(quirk: false);
        Type1TestHost rfc = Arm64K(quirk: true);
        (int c0, _) = today.Container(Type1TestHost.MdevGroup);
        (int c1, _) = rfc.Container(Type1TestHost.MdevGroup);

        // The RFC started from all ones instead of PAGE_MASK; with no domain nothing masks it.
        Assert.Equal((~(64 * KiB - 1), 64 * KiB), Info(today, c0));
        Assert.Equal((ulong.MaxValue, 1UL), Info(rfc, c1));
        Assert.Empty(QuirkCalls.Violations(today));
        Assert.Equal(["pgsize-bitmap"], QuirkCalls.Violations(rfc));
        // Alignment is still PAGE_SIZE.
        ulong mem = rfc.MmapAnonymous(1 * MiB);
        Assert.Equal(Errno.EINVAL.AsReturn(), rfc.Map(c1, 0x1000, mem, 4 * KiB));
        Assert.Equal(0, rfc.Map(c1, 0x10000, mem, 64 * KiB));
        Assert.Equal(1UL, rfc.Backend(c1).MappingCount);
    }

    [Fact]
    public void GetInfo_IommuNotBelowPageSize_SubpageIommuPages_ChangesNothing()
    {
        // A 4 KiB host behind VT-d: nothing is below PAGE_SIZE, so the quirk has nothing to expose.
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong mem = t.MmapAnonymous(1 * MiB);

        Assert.Equal((VtDPgsizes, 4 * KiB), Info(t, c));
        Assert.Equal(0, t.Map(c, 0x1000, mem, 4 * KiB));
        Assert.Equal(1UL, t.LockedVmPages);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    // VFIO_IOMMU_GET_INFO with room for the chain: iova_pgsizes and the migration capability's pgsize_bitmap (the first capability).
    private static (ulong Pgsizes, ulong Migration) Info(Type1TestHost t, int c)
    {
        var buf = new byte[512];
        BinaryPrimitives.WriteUInt32LittleEndian(buf, (uint)buf.Length);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.IommuGetInfo, buf));
        int cap = (int)BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16));
        Assert.Equal(24, cap);
        Assert.Equal((ushort)IommuType1InfoCapId.Migration, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(cap)));
        return (BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)), BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(cap + 16)));
    }

    // VFIO_IOMMU_DIRTY_PAGES GET_BITMAP of [iova, iova + size) at pgsize into the user memory at data.
    private static long GetBitmap(Type1TestHost t, int c, ulong iova, ulong size, ulong pgsize, ulong data)
    {
        ulong words = ((size / pgsize) + 63) / 64;
        var buf = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = (uint)buf.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(buf);
        new VfioIommuType1DirtyBitmapGet { Iova = iova, Size = size, Bitmap = new VfioBitmap { Pgsize = pgsize, Size = words * 8, Data = data } }
            .Write(buf.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
        return t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, buf);
    }
}
