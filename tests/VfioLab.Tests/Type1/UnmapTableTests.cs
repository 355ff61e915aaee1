using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Which mappings an UNMAP_DMA range removes (spec §1.6 steps 9-10, §3.5, §3.6): v2 refuses to bisect a
/// mapping and changes nothing; v1 stops at a mapping that starts before the range and removes a mapping
/// whose first byte is covered, whole. Then what removal releases: pins, charges, translations, and the
/// dirty flag a device-writable page gets at unpin.
/// </summary>
public sealed class UnmapTableTests
{
    private const int Gpu = Type1TestHost.GpuGroup;
    private const ulong PagesPerMapping = 16;
    private static readonly long Einval = Errno.EINVAL.AsReturn();

    // A = [0x10000, 0x1ffff], B = [0x20000, 0x2ffff], gap [0x30000, 0x3ffff], C = [0x40000, 0x4ffff].
    private static readonly (char Name, ulong Iova)[] Layout = [('A', 0x10000), ('B', 0x20000), ('C', 0x40000)];

    /// <summary>version, iova, size, expected return, reported size (on success), mappings left.</summary>
    public static TheoryData<int, ulong, ulong, long, ulong, string> Table() => new()
    {
        // Exact and multi-mapping covers: the same in both versions.
        { 2, 0x10000, 0x10000, 0, 0x10000, "BC" },
        { 1, 0x10000, 0x10000, 0, 0x10000, "BC" },
        { 2, 0x10000, 0x20000, 0, 0x20000, "C" },
        { 1, 0x10000, 0x20000, 0, 0x20000, "C" },
        { 2, 0x10000, 0x40000, 0, 0x30000, "" },
        { 1, 0x10000, 0x40000, 0, 0x30000, "" },
        { 2, 0x0, 0x100000, 0, 0x30000, "" },
        { 1, 0x0, 0x100000, 0, 0x30000, "" },
        // Start before A, end at A's end / inside A / inside B.
        { 2, 0x0, 0x20000, 0, 0x10000, "BC" },
        { 1, 0x0, 0x20000, 0, 0x10000, "BC" },
        { 2, 0x0, 0x18000, Einval, 0, "ABC" },
        { 1, 0x0, 0x18000, 0, 0x10000, "BC" },
        { 2, 0x0, 0x28000, Einval, 0, "ABC" },
        { 1, 0x0, 0x28000, 0, 0x20000, "C" },
        // Start at A, end inside A: v1 removes all of A and reports more than asked.
        { 2, 0x10000, 0x8000, Einval, 0, "ABC" },
        { 1, 0x10000, 0x8000, 0, 0x10000, "BC" },
        { 2, 0x10000, 0x1000, Einval, 0, "ABC" },
        { 1, 0x10000, 0x1000, 0, 0x10000, "BC" },
        // Start at A, end inside B / in the gap.
        { 2, 0x10000, 0x18000, Einval, 0, "ABC" },
        { 1, 0x10000, 0x18000, 0, 0x20000, "C" },
        { 2, 0x10000, 0x28000, 0, 0x20000, "C" },
        { 1, 0x10000, 0x28000, 0, 0x20000, "C" },
        // Start inside A: v1 stops at A at once, even when B is fully covered.
        { 2, 0x18000, 0x8000, Einval, 0, "ABC" },
        { 1, 0x18000, 0x8000, 0, 0, "ABC" },
        { 2, 0x18000, 0x18000, Einval, 0, "ABC" },
        { 1, 0x18000, 0x18000, 0, 0, "ABC" },
        { 2, 0x18000, 0x20000, Einval, 0, "ABC" },
        { 1, 0x18000, 0x20000, 0, 0, "ABC" },
        { 2, 0x2f000, 0x2000, Einval, 0, "ABC" },
        { 1, 0x2f000, 0x2000, 0, 0, "ABC" },
        // Gaps: nothing there is success with size 0.
        { 2, 0x30000, 0x10000, 0, 0, "ABC" },
        { 1, 0x30000, 0x10000, 0, 0, "ABC" },
        { 2, 0x100000, 0x1000, 0, 0, "ABC" },
        { 1, 0x100000, 0x1000, 0, 0, "ABC" },
        // From the gap into C: to its end / inside it.
        { 2, 0x30000, 0x20000, 0, 0x10000, "AB" },
        { 1, 0x30000, 0x20000, 0, 0x10000, "AB" },
        { 2, 0x30000, 0x18000, Einval, 0, "ABC" },
        { 1, 0x30000, 0x18000, 0, 0x10000, "AB" },
        { 2, 0x38000, 0x9000, Einval, 0, "ABC" },
        { 1, 0x38000, 0x9000, 0, 0x10000, "AB" },
        // Start at B, across the gap, end inside C.
        { 2, 0x20000, 0x28000, Einval, 0, "ABC" },
        { 1, 0x20000, 0x28000, 0, 0x20000, "A" },
        // Last page of C.
        { 2, 0x4f000, 0x1000, Einval, 0, "ABC" },
        { 1, 0x4f000, 0x1000, 0, 0, "ABC" },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void UnmapDma_RangeAgainstThreeMappings_RemovesExactlyTheExpected(int version, ulong iova, ulong size, long expectedRet,
        ulong expectedSize, string remaining)
    {
        (Type1TestHost t, int c) = ThreeMappings(version);

        (long ret, ulong reported) = t.Unmap(c, iova, size);

        Assert.Equal(expectedRet, ret);
        // On failure nothing is copied back: the caller's size stays.
        Assert.Equal(ret == 0 ? expectedSize : size, reported);
        ulong left = (ulong)remaining.Length;
        Assert.Equal(left, t.Backend(c).MappingCount);
        Assert.Equal(65535 - left, t.Backend(c).DmaAvail);
        Assert.Equal(left * PagesPerMapping, t.LockedVmPages);
        Assert.Equal(left * PagesPerMapping, t.TotalPins);
        IommuDomain d = t.DomainOf(Gpu)!;
        foreach ((char name, ulong start) in Layout)
        {
            bool expected = remaining.Contains(name, StringComparison.Ordinal);
            Assert.True(expected == d.Translate(new Iova(start), write: true).Ok, $"{name} first page");
            Assert.True(expected == d.Translate(new Iova(start + 0xf000), write: true).Ok, $"{name} last page");
            // A removed mapping's range can be mapped again; a remaining one still occupies it.
            Assert.Equal(expected ? Errno.EEXIST.AsReturn() : 0, t.Map(c, start, t.MmapAnonymous(0x10000), 0x10000));
        }
    }

    [Theory]
    [InlineData(DmaMapFlags.Read | DmaMapFlags.Write, true)]
    [InlineData(DmaMapFlags.Write, true)]
    [InlineData(DmaMapFlags.Read, false)]
    public void UnmapDma_Mapping_UnpinsAndDirtiesOnlyDeviceWritablePages(DmaMapFlags prot, bool dirty)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        TakeFrameZero(t);
        ulong buf = t.MmapAnonymous(0x10000);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000, prot));
        IommuDomain d = t.DomainOf(Gpu)!;
        Pfn first = PfnAt(t, d, 0x10000);
        Pfn last = PfnAt(t, d, 0x1f000);
        Assert.Equal(16UL, t.TotalPins);
        Assert.False(t.Machine.Memory.IsDirty(first));

        Assert.Equal((0L, 0x10000UL), t.Unmap(c, 0x10000, 0x10000));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, d.TotalEntries);
        Assert.Equal(dirty, t.Machine.Memory.IsDirty(first));
        Assert.Equal(dirty, t.Machine.Memory.IsDirty(last));
    }

    [Fact]
    public void UnmapDma_TwoDomains_RemovesEveryTranslationAndUnpinsOnce()
    {
        var t = new Type1TestHost(otherIommu: IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false));
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        TakeFrameZero(t);
        ulong buf = t.MmapAnonymous(0x20000);
        Assert.Equal(0, t.Map(c, 0x10000, buf, 0x10000));
        Assert.Equal(0, t.Map(c, 0x20000, buf + 0x10000, 0x10000));
        IommuDomain other = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        Assert.NotSame(t.DomainOf(Gpu), other);
        Pfn pfn = PfnAt(t, other, 0x10000);

        Assert.Equal((0L, 0x10000UL), t.Unmap(c, 0x10000, 0x10000));

        Assert.Equal(16UL, t.TotalPins);
        Assert.Equal(16UL, t.LockedVmPages);
        Assert.False(t.DomainOf(Gpu)!.Translate(new Iova(0x10000), write: false).Ok);
        Assert.False(other.Translate(new Iova(0x10000), write: false).Ok);
        Assert.True(other.Translate(new Iova(0x20000), write: false).Ok);
        Assert.True(t.Machine.Memory.IsDirty(pfn));
    }

    [Fact]
    public void UnmapDma_V1SameRangeTwice_SecondReportsZero()
    {
        (Type1TestHost t, int c) = ThreeMappings(1);

        Assert.Equal((0L, 0x10000UL), t.Unmap(c, 0x10000, 0x1000));
        Assert.Equal((0L, 0UL), t.Unmap(c, 0x10000, 0x1000));

        Assert.Equal(2UL, t.Backend(c).MappingCount);
    }

    private static (Type1TestHost Host, int Container) ThreeMappings(int version)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: version == 2 ? VfioExtension.Type1v2Iommu : VfioExtension.Type1Iommu);
        ulong buf = t.MmapAnonymous(0x30000);
        for (int i = 0; i < Layout.Length; i++)
        {
            Assert.Equal(0, t.Map(c, Layout[i].Iova, buf + ((ulong)i * 0x10000), 0x10000));
        }
        Assert.Equal(3 * PagesPerMapping, t.TotalPins);
        return (t, c);
    }

    // Physical address 0 reads as a hole through iova_to_phys; keep the mappings off frame 0.
    private static void TakeFrameZero(Type1TestHost t) => t.MmapAnonymous(t.PageSize, populate: true);

    private static Pfn PfnAt(Type1TestHost t, IommuDomain d, ulong iova)
    {
        PhysAddr phys = d.IovaToPhys(new Iova(iova));
        Assert.NotEqual(0UL, phys.Value);
        return new Pfn(phys.Value >> t.Machine.PageShift);
    }
}
