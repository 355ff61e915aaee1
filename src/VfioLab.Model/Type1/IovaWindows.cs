using VfioLab.Abi;
using VfioLab.Addressing;
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
                return Errno.EINVAL;
            }
            if (aperture.Start > span.Start && tree.OverlapsLocked(new ByteRange(span.Start, aperture.Start - 1)))
            {
                return Errno.EINVAL;
            }
            if (aperture.Last < span.Last && tree.OverlapsLocked(new ByteRange(aperture.Last + 1, span.Last)))
            {
                return Errno.EINVAL;
            }
        }
        foreach (ReservedRegion region in iommuGroup.ReservedRegions)
        {
            if (region.IsHoleForVfio && tree.OverlapsLocked(region.Range))
            {
                return Errno.EINVAL;
            }
        }
        candidate = (_list.IsEmpty ? IovaList.Of(aperture) : _list.Clip(aperture)).CutHoles(iommuGroup.ReservedRegions);
        return candidate.IsEmpty ? Errno.EINVAL : Errno.None;
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
