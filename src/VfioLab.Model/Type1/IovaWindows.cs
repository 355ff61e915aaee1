using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// The valid IOVA windows of one type1 container (<c>iova_list</c>, spec §2.8): the domains' apertures minus their
/// groups' non-relaxable reserved regions. An attach checks them against the mappings and narrows them
/// (<c>vfio_iommu_aper_conflict</c>, <c>vfio_iommu_aper_resize</c>, <c>vfio_iommu_resv_conflict</c>,
/// <c>vfio_iommu_resv_exclude</c>); a detach widens them again (<c>vfio_iommu_aper_expand</c>,
/// <c>vfio_iommu_resv_refresh</c>); MAP must fall inside one (<c>vfio_iommu_iova_dma_valid</c>). Empty means no
/// restriction: no IOMMU domain was ever attached.
/// </summary>
/// <remarks>Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_list</c> (an immutable
/// <see cref="IovaList"/>, replaced whole, so a candidate is installed only once the attach succeeded); every
/// <c>*Locked</c> member asserts it.</remarks>
internal sealed class IovaWindows(Type1Context ctx, DmaTree tree)
{
    private IovaList _list = IovaList.Empty;

    /// <summary>The windows, ascending (empty: no restriction).</summary>
    public IovaList ListLocked
    {
        get
        {
            ctx.AssertLocked();
            return _list;
        }
    }

    /// <summary>Whether <paramref name="range"/> lies entirely inside one window (always with none).</summary>
    public bool ContainsWholeLocked(ByteRange range) => ListLocked.ContainsWhole(range);

    /// <summary>MAP outside the windows (<c>vfio_iommu_iova_dma_valid</c>): EINVAL, recorded with the first reserved region
    /// of an attached group that <paramref name="range"/> overlaps, or the aperture it leaves.</summary>
    public Errno RefuseOutsideLocked(ByteRange range, IReadOnlyList<VfioDomain> domains)
    {
        ctx.AssertLocked();
        const string check = "vfio_iommu_iova_dma_valid";
        foreach (VfioDomain d in domains)
        {
            foreach (Type1Group g in d.Groups)
            {
                foreach (ReservedRegion region in g.IommuGroup!.ReservedRegions)
                {
                    if (region.IsHoleForVfio && region.Range.Overlaps(range))
                    {
                        return Refusals.Refuse(Errno.EINVAL, check, "[0x{0:x}, 0x{1:x}] overlaps the {4} reserved region [0x{2:x}, 0x{3:x}] of group " + g.IommuGroup.Id,
                            range.Start, range.Last, region.Range.Start, region.Range.Last, region.Type.ToName());
                    }
                }
            }
            ByteRange aperture = d.Domain.Aperture;
            if (range.Start < aperture.Start || range.Last > aperture.Last)
            {
                return Refusals.Refuse(Errno.EINVAL, check, "[0x{0:x}, 0x{1:x}] leaves the IOMMU aperture [0x{2:x}, 0x{3:x}]",
                    range.Start, range.Last, aperture.Start, aperture.Last);
            }
        }
        ByteRange span = _list.IsEmpty ? range : _list.Span;
        return Refusals.Refuse(Errno.EINVAL, check, "[0x{0:x}, 0x{1:x}] is not inside one valid IOVA window (the windows span [0x{2:x}, 0x{3:x}])",
            range.Start, range.Last, span.Start, span.Last);
    }

    /// <summary>Steps 5-7 of the attach: EINVAL when <paramref name="domain"/>'s aperture misses the windows or would
    /// cut off a mapping, when one of <paramref name="iommuGroup"/>'s reserved regions holds a mapping, or when nothing
    /// valid is left; otherwise <paramref name="candidate"/> is the windows once the attach completes.</summary>
    public Errno CheckAttachLocked(IommuGroup iommuGroup, IommuDomain domain, out IovaList candidate)
    {
        ctx.AssertLocked();
        candidate = _list;
        ByteRange aperture = domain.Aperture;
        if (!_list.IsEmpty)
        {
            ByteRange span = _list.Span;
            if (!aperture.Overlaps(span))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_aper_conflict", "the new domain's aperture [0x{0:x}, 0x{1:x}] misses the valid IOVA span [0x{2:x}, 0x{3:x}]",
                    aperture.Start, aperture.Last, span.Start, span.Last);
            }
            if (aperture.Start > span.Start && tree.OverlapsLocked(new ByteRange(span.Start, aperture.Start - 1)))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_aper_conflict", "a mapping in [0x{0:x}, 0x{1:x}] lies below the new domain's aperture [0x{2:x}, 0x{3:x}]",
                    span.Start, aperture.Start - 1, aperture.Start, aperture.Last);
            }
            if (aperture.Last < span.Last && tree.OverlapsLocked(new ByteRange(aperture.Last + 1, span.Last)))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_aper_conflict", "a mapping in [0x{0:x}, 0x{1:x}] lies above the new domain's aperture [0x{2:x}, 0x{3:x}]",
                    aperture.Last + 1, span.Last, aperture.Start, aperture.Last);
            }
        }
        foreach (ReservedRegion region in iommuGroup.ReservedRegions)
        {
            if (region.IsHoleForVfio && tree.OverlapsLocked(region.Range))
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_resv_conflict", "a mapping overlaps the {4} reserved region [0x{0:x}, 0x{1:x}] of group {2}",
                    region.Range.Start, region.Range.Last, (ulong)iommuGroup.Id, text: region.Type.ToName());
            }
        }
        candidate = (_list.IsEmpty ? IovaList.Of(aperture) : _list.Clip(aperture)).CutHoles(iommuGroup.ReservedRegions);
        return candidate.IsEmpty
            ? Refusals.Refuse(Errno.EINVAL, "vfio_iommu_resv_exclude", "no valid IOVA is left once group {0}'s reserved regions are cut from the aperture [0x{1:x}, 0x{2:x}]",
                (ulong)iommuGroup.Id, aperture.Start, aperture.Last)
            : Errno.None;
    }

    /// <summary>The attach completed: its candidate becomes the windows.</summary>
    public void InstallLocked(IovaList candidate)
    {
        ctx.AssertLocked();
        _list = candidate;
    }

    /// <summary>
    /// After a detach, when there were windows: the span of the remaining <paramref name="domains"/>' apertures (the
    /// whole 64-bit space with none left) minus the reserved regions of every remaining group. A rebuild that leaves
    /// nothing keeps the old windows. The span is re-expanded only when a domain was freed; otherwise the kernel
    /// rebuilds between the current first window's start and last window's end, so a departed group's hole at either
    /// edge stays cut.
    /// </summary>
    public void RebuildLocked(IReadOnlyList<VfioDomain> domains, bool domainFreed)
    {
        ctx.AssertLocked();
        ulong start = 0;
        ulong last = ulong.MaxValue;
        var regions = new List<ReservedRegion>();
        foreach (VfioDomain d in domains)
        {
            start = Math.Max(start, d.Domain.Aperture.Start);
            last = Math.Min(last, d.Domain.Aperture.Last);
            foreach (Type1Group g in d.Groups)
            {
                regions.AddRange(g.IommuGroup!.ReservedRegions);
            }
        }
        if (!domainFreed)
        {
            (start, last) = (_list.Span.Start, _list.Span.Last);
        }
        if (start > last)
        {
            return;
        }
        IovaList rebuilt = IovaList.Of(new ByteRange(start, last)).CutHoles(regions);
        if (!rebuilt.IsEmpty)
        {
            _list = rebuilt;
        }
    }

    /// <summary>Release: no restriction again.</summary>
    public void ResetLocked()
    {
        ctx.AssertLocked();
        _list = IovaList.Empty;
    }

    /// <summary>Test hook (lock held): replaces the windows as given, unchecked (breaks mapping-in-iova-range when a
    /// mapping falls outside, the windows are unsorted or overlapping, or one covers a reserved hole).</summary>
    public void SetForTestLocked(IEnumerable<ByteRange> windows)
    {
        ctx.AssertLocked();
        _list = IovaList.UncheckedForTest(windows);
    }
}
