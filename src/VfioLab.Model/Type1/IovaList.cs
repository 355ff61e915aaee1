using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// The valid IOVA windows of a container (<c>iova_list</c>): sorted, disjoint, inclusive ranges built
/// from the domains' apertures minus the groups' reserved regions (DIRECT_RELAXABLE excepted, spec
/// §2.8). Empty means "no restriction": no IOMMU domain was ever attached. Immutable; every change
/// builds a candidate, which is installed only once the whole operation succeeded.
/// </summary>
internal sealed class IovaList
{
    private readonly ByteRange[] _ranges;

    private IovaList(ByteRange[] ranges) => _ranges = ranges;

    /// <summary>The empty list.</summary>
    public static IovaList Empty { get; } = new([]);

    /// <summary>The windows, ascending.</summary>
    public IReadOnlyList<ByteRange> Ranges => _ranges;

    /// <summary>Whether there is no window (no restriction).</summary>
    public bool IsEmpty => _ranges.Length == 0;

    /// <summary>From the first window's start to the last window's end.</summary>
    public ByteRange Span => new(_ranges[0].Start, _ranges[^1].Last);

    /// <summary>A list of one window.</summary>
    public static IovaList Of(ByteRange range) => new([range]);

    /// <summary>Whether <paramref name="range"/> lies entirely inside one window (always true when empty).</summary>
    public bool ContainsWhole(ByteRange range)
    {
        if (IsEmpty)
        {
            return true;
        }
        foreach (ByteRange r in _ranges)
        {
            if (r.Contains(range))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The list clipped to <paramref name="aperture"/> (vfio_iommu_aper_resize).</summary>
    public IovaList Clip(ByteRange aperture)
    {
        var kept = new List<ByteRange>(_ranges.Length);
        foreach (ByteRange r in _ranges)
        {
            if (r.Overlaps(aperture))
            {
                kept.Add(new ByteRange(Math.Max(r.Start, aperture.Start), Math.Min(r.Last, aperture.Last)));
            }
        }
        return new IovaList([.. kept]);
    }

    /// <summary>The list with every non-relaxable region of <paramref name="regions"/> cut out
    /// (vfio_iommu_resv_exclude).</summary>
    public IovaList CutHoles(IEnumerable<ReservedRegion> regions)
    {
        var current = new List<ByteRange>(_ranges);
        foreach (ReservedRegion region in regions)
        {
            if (!region.IsHoleForVfio)
            {
                continue;
            }
            var next = new List<ByteRange>(current.Count + 1);
            foreach (ByteRange r in current)
            {
                if (!r.Overlaps(region.Range))
                {
                    next.Add(r);
                    continue;
                }
                if (region.Range.Start > r.Start)
                {
                    next.Add(new ByteRange(r.Start, region.Range.Start - 1));
                }
                if (region.Range.Last < r.Last)
                {
                    next.Add(new ByteRange(region.Range.Last + 1, r.Last));
                }
            }
            current = next;
        }
        return new IovaList([.. current]);
    }

    /// <summary>Test hook: a list of exactly these windows, in this order, unchecked.</summary>
    internal static IovaList UncheckedForTest(IEnumerable<ByteRange> windows) => new([.. windows]);

    /// <inheritdoc />
    public override string ToString() => IsEmpty ? "(no restriction)" : string.Join(", ", _ranges);
}
