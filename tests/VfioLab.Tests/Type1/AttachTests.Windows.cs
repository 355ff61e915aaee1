using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Type1;

namespace VfioLab.Tests.Type1;

// Attach and detach: apertures, reserved regions and the valid IOVA windows (spec §2.8, §3.9).
public sealed partial class AttachTests
{
    [Fact]
    public void AttachGroup_MappingOutsideNewAperture_ReturnsEINVALAndChangesNothing()
    {
        var t = new Type1TestHost(otherIommu: Other(aperture: new ByteRange(0, 0xffffffff)));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x100000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = gpu.TotalEntries;
        var events = EventCounter.Attach(t);
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Null(t.IommuGroup(Type1TestHost.OtherIommuGroup).DmaOwner);
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
        Assert.Equal(entries, gpu.TotalEntries);
        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(0, events.LiveDomains);
    }

    [Fact]
    public void AttachGroup_MappingsInsideNewAperture_NarrowsWindowsToIt()
    {
        var t = new Type1TestHost(otherIommu: Other(aperture: new ByteRange(0, 0xffffffff)));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x10000000, t.MmapAnonymous(2 * MiB), 2 * MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        Assert.Equal([new ByteRange(0, 0xfedfffff), new ByteRange(0xfef00000, 0xffffffff)], t.Backend(c).IovaRanges);
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x100000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
    }

    [Fact]
    public void AttachGroup_ApertureDisjointFromWindows_ReturnsEINVAL()
    {
        var t = new Type1TestHost(otherIommu: Other(aperture: new ByteRange(1UL << 48, (1UL << 49) - 1)));
        (int c, _) = t.Container();
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
    }

    [Theory]
    [InlineData("reserved")]
    [InlineData("direct")]
    [InlineData("msi")]
    [InlineData("sw-msi")]
    public void AttachGroup_MappingOverlapsNewReservedRegion_ReturnsEINVALAndChangesNothing(string type)
    {
        Assert.True(ReservedRegionTypeNames.TryParse(type, out ReservedRegionType parsed));
        var region = new ReservedRegion(new ByteRange(0x300000, 0x3fffff), parsed);
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, extra: [region]));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x200000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
        Assert.Equal(512UL, t.TotalPins);
    }

    [Fact]
    public void AttachGroup_MappingOverlapsDirectRelaxableRegion_AttachesWithoutHole()
    {
        var region = new ReservedRegion(new ByteRange(0x300000, 0x3fffff), ReservedRegionType.DirectRelaxable);
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, extra: [region]));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x200000, t.MmapAnonymous(2 * MiB), 2 * MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        AssertSameTranslations(t.DomainOf(Type1TestHost.GpuGroup)!, t.DomainOf(Type1TestHost.OtherIommuGroup)!, 0x200000, 2 * MiB);
    }

    [Fact]
    public void AttachGroup_ApertureAllReserved_ReturnsEINVAL()
    {
        var t = new Type1TestHost(otherIommu: Other(aperture: new ByteRange(0, 0xfffff),
            extra: [new ReservedRegion(new ByteRange(0, 0xfffff), ReservedRegionType.Reserved)]));
        (int c, _) = t.Container();
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
    }

    [Fact]
    public void SetIommu_OnlyGroupApertureAllReserved_ReturnsEINVAL()
    {
        var t = new Type1TestHost(otherIommu: Other(aperture: new ByteRange(0, 0xfffff),
            extra: [new ReservedRegion(new ByteRange(0, 0xfffff), ReservedRegionType.Reserved)]));
        int c = t.OpenContainer();
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);
        Assert.Equal(0, t.SetContainer(g, c));

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetIommu(c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
    }

    [Fact]
    public void IovaRanges_NarrowerGroupAttachesAndLeaves_NarrowThenWiden()
    {
        var hole = new ReservedRegion(new ByteRange(0x40000000, 0x7fffffff), ReservedRegionType.Reserved);
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, new ByteRange(0, (1UL << 39) - 1), [hole]));
        (int c, _) = t.Container();
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        int g = t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        Assert.Equal([new ByteRange(0, 0x3fffffff), new ByteRange(0x80000000, 0xfedfffff), new ByteRange(0xfef00000, (1UL << 39) - 1)],
            t.Backend(c).IovaRanges);
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        Assert.Equal(0, t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
    }

    [Fact]
    public void IovaRanges_GroupSharingDomainLeaves_InteriorHoleReopens()
    {
        // Same ops, sizes, aperture and coherency: the group shares the GPU's domain but brings a hole.
        var hole = new ReservedRegion(new ByteRange(0x40000000, 0x7fffffff), ReservedRegionType.Reserved);
        var t = new Type1TestHost(otherIommu: Other(extra: [hole]));
        (int c, _) = t.Container();
        int g = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Assert.Same(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal([new ByteRange(0, 0x3fffffff), new ByteRange(0x80000000, 0xfedfffff), new ByteRange(0xfef00000, VtDLast)],
            t.Backend(c).IovaRanges);

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
    }

    [Fact]
    public void IovaRanges_GroupSharingDomainLeaves_HoleAtWindowEdgeStaysCut()
    {
        // vfio_iommu_type1_detach_group only re-expands the span (vfio_iommu_aper_expand) when a domain is
        // freed; otherwise vfio_iommu_resv_refresh rebuilds between the first window's start and the last
        // window's end, so a departed group's hole at the edge stays out of the list.
        var hole = new ReservedRegion(new ByteRange(0, 0xfffff), ReservedRegionType.Reserved);
        var t = new Type1TestHost(otherIommu: Other(extra: [hole]));
        (int c, _) = t.Container();
        int g = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Assert.Same(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));
        ByteRange[] narrowed = [new(0x100000, 0xfedfffff), new(0xfef00000, VtDLast)];
        Assert.Equal(narrowed, t.Backend(c).IovaRanges);

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(narrowed, t.Backend(c).IovaRanges);
    }

    [Fact]
    public void IovaRanges_HoleAtEdgeOfFreedDomain_ReopensWithAperture()
    {
        var hole = new ReservedRegion(new ByteRange(0, 0xfffff), ReservedRegionType.Reserved);
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, extra: [hole]));
        (int c, _) = t.Container();
        int g = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Assert.NotSame(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal([new ByteRange(0x100000, 0xfedfffff), new ByteRange(0xfef00000, VtDLast)], t.Backend(c).IovaRanges);

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
    }

    [Fact]
    public void IovaRanges_LastIommuGroupLeavesWithMdevLeft_WholeAddressSpace()
    {
        // The domain is freed: vfio_iommu_aper_expand with no domain left widens to [0, ~0], and
        // vfio_iommu_resv_refresh finds no reserved region: one window, not the empty "no restriction" list.
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Empty(t.Backend(c).IovaRanges);
        int gpu = t.AddGroup(c, Type1TestHost.GpuGroup);
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);

        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal([new ByteRange(0, ulong.MaxValue)], t.Backend(c).IovaRanges);
        Assert.Equal(PageMask, t.Backend(c).PgsizeBitmap);
        ulong far = 1UL << 50;
        Assert.Equal(0, t.Map(c, far, t.MmapAnonymous(2 * MiB), 2 * MiB));
        // The GPU's aperture now conflicts with that mapping (§3.9 step 5).
        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(gpu, c));
        Assert.Equal([new ByteRange(0, ulong.MaxValue)], t.Backend(c).IovaRanges);
    }
}
