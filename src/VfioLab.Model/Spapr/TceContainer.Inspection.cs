using VfioLab.Host;

namespace VfioLab.Spapr;

// What checks, digests and reports read: one snapshot under the lock.
internal sealed partial class TceContainer
{
    /// <summary>The container's state, read under its lock.</summary>
    public TceContainerSnapshot Snapshot()
    {
        using (_lock.EnterScope())
        {
            var windows = new List<TceWindowSnapshot>();
            for (int n = 0; n < _tables.Length; n++)
            {
                if (_tables[n] is { } t)
                {
                    windows.Add(new TceWindowSnapshot(t, _tableMm[n], t.Runs()));
                }
            }
            return new TceContainerSnapshot(ContainerId, V2, _enabled, _defWindowPending, _mm, _firstUser, _lockedPages, _lockedMm,
                [.. _groups.Select(g => g.Group.Number)], windows, [.. _prereg]);
        }
    }

    /// <summary>Whether <see cref="Release"/> has run.</summary>
    public bool IsReleased
    {
        get { using (_lock.EnterScope()) { return _released; } }
    }

    /// <summary>Test hook: the first user's mm as recorded for the checks (under the quirk nothing else records it).</summary>
    internal AddressSpace? FirstUserForTest => _firstUser;

    /// <summary>Test hook: marks <paramref name="region"/> released (<c>mapped</c> 0) while TCEs may still point into it,
    /// the state <c>mm_iommu_put</c>'s cmpxchg exists to prevent (breaks <c>prereg-not-released-while-mapped</c>).</summary>
    internal void MarkRegionReleasedForTest(MmIommuRegion region)
    {
        using (_lock.EnterScope())
        {
            region.Mapped = 0;
        }
    }
}
