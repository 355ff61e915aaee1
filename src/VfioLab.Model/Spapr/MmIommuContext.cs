using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Spapr;

/// <summary>
/// One mm's list of pre-registered regions (<c>mm-&gt;context.iommu_group_mem_list</c>), shared by every
/// container of that mm: <c>mm_iommu_get</c> (exact match, takes a user), <c>mm_iommu_lookup</c> (the region
/// holding a range), the overlap rule of <c>mm_iommu_new</c>, and removal when the last put releases one.
/// A forked child's mm starts with an empty list (<c>mm_iommu_init</c> from <c>init_new_context</c>).
/// </summary>
/// <remarks>Lock: <c>_lock</c> (<c>mem_list_mutex</c>), a leaf lock, protects the list and each region's
/// <see cref="MmIommuRegion.Used"/>.</remarks>
internal sealed class MmIommuContext(AddressSpace mm, int id)
{
    private readonly object _lock = new();
    private readonly List<MmIommuRegion> _regions = [];

    /// <summary>The mm.</summary>
    public AddressSpace Mm { get; } = mm;

    /// <summary>A host-unique number for the mm (recorded in TCEs' userspace view).</summary>
    public int Id { get; } = id;

    /// <summary>The registered regions (a copy).</summary>
    public List<MmIommuRegion> Regions
    {
        get { lock (_lock) { return [.. _regions]; } }
    }

    /// <summary><c>mm_iommu_get</c>: the region registered at exactly <paramref name="ua"/> with
    /// <paramref name="entries"/> pages, with one more user; null when none.</summary>
    public MmIommuRegion? Get(ulong ua, ulong entries)
    {
        lock (_lock)
        {
            foreach (MmIommuRegion r in _regions)
            {
                if (r.Ua == ua && r.Entries == entries)
                {
                    r.Used++;
                    return r;
                }
            }
            return null;
        }
    }

    /// <summary><c>mm_iommu_lookup</c>: the first region holding <c>[ua, ua + size)</c>, or null.</summary>
    public MmIommuRegion? Lookup(ulong ua, ulong size, int hostPageShift)
    {
        lock (_lock)
        {
            foreach (MmIommuRegion r in _regions)
            {
                if (r.Contains(ua, size, hostPageShift))
                {
                    return r;
                }
            }
            return null;
        }
    }

    /// <summary>The insertion half of <c>mm_iommu_new</c>: EINVAL when the new region overlaps a registered one
    /// (nothing added), else the region is listed.</summary>
    public Abi.Errno TryAdd(MmIommuRegion region, int hostPageShift)
    {
        lock (_lock)
        {
            ulong start = region.Ua;
            ulong end = region.Ua + region.Size(hostPageShift);
            foreach (MmIommuRegion r in _regions)
            {
                if (r.Ua < end && start < r.Ua + r.Size(hostPageShift))
                {
                    return Refusals.Refuse(Abi.Errno.EINVAL, "mm_iommu_do_alloc", "[0x{0:x}, 0x{1:x}) overlaps the registered region [0x{2:x}, 0x{3:x})", start, end, r.Ua,
                        r.Ua + r.Size(hostPageShift));
                }
            }
            _regions.Add(region);
            return Abi.Errno.None;
        }
    }

    /// <summary>
    /// <c>mm_iommu_put</c>'s bookkeeping: ENOENT when the region has no user; drops one user; when that was the last
    /// and TCEs still point into it (<c>mapped</c> != 1) the user is restored and EBUSY returned; otherwise the
    /// region is unlisted and <paramref name="released"/> set, for the caller to unpin and un-charge.
    /// </summary>
    public Abi.Errno Put(MmIommuRegion region, out bool released)
    {
        released = false;
        lock (_lock)
        {
            if (region.Used == 0)
            {
                return Refusals.Refuse(Abi.Errno.ENOENT, "mm_iommu_put", "the region at 0x{0:x} has no user left", region.Ua);
            }
            region.Used--;
            if (region.Used > 0)
            {
                return Abi.Errno.None;
            }
            if (region.Mapped != 1)
            {
                region.Used++;
                return Refusals.Refuse(Abi.Errno.EBUSY, "mm_iommu_put", "TCEs still point into the region at 0x{0:x} ({1} mapping references)", region.Ua,
                    (ulong)(region.Mapped - 1));
            }
            region.Mapped = 0;
            _regions.Remove(region);
            released = true;
            return Abi.Errno.None;
        }
    }
}
