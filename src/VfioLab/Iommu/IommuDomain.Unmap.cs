using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>Unmapping and deferred IOTLB invalidation of <see cref="IommuDomain"/>
/// (<c>iommu_unmap</c>, <c>iommu_unmap_fast</c>, <c>iommu_iotlb_sync</c>).</summary>
internal sealed partial class IommuDomain
{
    /// <summary>
    /// <c>iommu_unmap(domain, iova, size)</c> with a synchronous IOTLB flush: removes whole IOPTEs from
    /// <paramref name="iova"/> on until at least <paramref name="size"/> bytes are counted. An IOPTE
    /// larger than what is asked, or one <paramref name="iova"/> starts inside, is removed whole and
    /// counted whole: modern drivers never split a large IOPTE (spec §3.4). Like the core's loop, it
    /// stops at the first hole. Never fails.
    /// </summary>
    /// <returns>Bytes unmapped, possibly more than <paramref name="size"/>; 0 when iova or size is
    /// not a multiple of the minimum page size (the core WARNs and returns 0), or when
    /// <paramref name="iova"/> is a hole.</returns>
    public ulong Unmap(Iova iova, ulong size)
    {
        lock (_lock)
        {
            return UnmapLocked(iova, size, deferred: false);
        }
    }

    /// <summary>
    /// <c>iommu_unmap_fast</c>: as <see cref="Unmap"/>, but the IOTLB invalidation is deferred to
    /// <see cref="IotlbSync"/>. Until then the physical ranges of the removed IOPTEs are pending
    /// invalidation: a device may still hold cached translations to them, so their pages must not be
    /// unpinned yet (type1's "unpin only after flush", spec §3.5; invariant <c>unpin-after-flush</c>).
    /// </summary>
    /// <returns>Bytes unmapped, as <see cref="Unmap"/>.</returns>
    public ulong UnmapDeferred(Iova iova, ulong size)
    {
        lock (_lock)
        {
            return UnmapLocked(iova, size, deferred: true);
        }
    }

    /// <summary><c>iommu_iotlb_sync</c>: flushes the IOTLB; nothing is pending invalidation afterwards. Never fails.</summary>
    public void IotlbSync()
    {
        lock (_lock)
        {
            _pending.Clear();
            Interlocked.Increment(ref _iotlbSyncs);
        }
        if (Trace.Enabled)
        {
            Trace.Emit("iommu_iotlb_sync", 0, TraceLog.F("domain", Name));
        }
    }

    /// <summary>Whether any byte of the physical range is still pending IOTLB invalidation.</summary>
    public bool HasPendingInvalidation(PhysAddr start, ulong size)
    {
        if (!ByteRange.TryFromStartSize(start.Value, size, out ByteRange r))
        {
            return false;
        }
        lock (_lock)
        {
            return _pending.Overlaps(r.Start, r.Last);
        }
    }

    /// <summary>Physical ranges unmapped with <see cref="UnmapDeferred"/> and not yet flushed.</summary>
    public IReadOnlyList<ByteRange> PendingInvalidations()
    {
        lock (_lock)
        {
            List<ByteRange> result = [];
            foreach (Run<RangeMark> r in _pending.All())
            {
                result.Add(new ByteRange(r.Start, r.Last));
            }
            return result;
        }
    }

    private ulong UnmapLocked(Iova iova, ulong size, bool deferred)
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_lock));
        ulong min = MinPageSize;
        if (size == 0 || min == 0 || ((iova.Value | size) & (min - 1)) != 0)
        {
            return 0;
        }
        ulong unmapped = 0;
        ulong cursor = iova.Value;
        while (unmapped < size)
        {
            if (!_table.TryGet(cursor, out Run<IopteRun> run))
            {
                break;
            }
            ulong p = run.Value.PageSize;
            ulong ioptStart = cursor & ~(p - 1);
            ulong wanted = size - unmapped;
            ulong k = wanted / p + ((wanted % p) != 0 ? 1UL : 0UL);
            ulong available = (run.Last - ioptStart) / p + 1;
            k = Math.Min(k, available);
            ulong last = ioptStart + ((k - 1) * p) + (p - 1);
            PhysAddr pa = run.ValueAt(ioptStart).Phys;
            _table.Remove(ioptStart, last);
            SubtractCount(p, k);
            if (deferred)
            {
                _pending.Set(pa.Value, pa.Value + (last - ioptStart), default);
            }
            unmapped += (k - 1) * p + p;
            if (last == ulong.MaxValue)
            {
                break;
            }
            cursor = last + 1;
        }
        if (unmapped != 0 && Trace.Enabled)
        {
            Trace.Emit(deferred ? "iommu_unmap_fast" : "iommu_unmap", 0, TraceLog.F("domain", Name),
                TraceLog.F("iova", iova.Value), TraceLog.F("size", size), TraceLog.F("unmapped", unmapped));
        }
        return unmapped;
    }
}
