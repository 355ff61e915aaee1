using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// Group detach with re-accounting, the IOVA windows' rebuild, and release (spec §2.8, §3.10, §3.14).
internal sealed partial class VfioIommu
{
    /// <summary>
    /// vfio_iommu_type1_detach_group: an emulated group leaves (the last group of an empty container takes
    /// every mapping with it); an IOMMU group leaves its domain, and an empty domain is freed: the last one
    /// takes every mapping with it, or, with emulated groups left, re-accounts the mappings to their external
    /// pins. The IOVA windows widen and the page sizes are recomputed. A group outside pinned-page scope
    /// leaving while tracking marks every page dirty. Never fails.
    /// </summary>
    public void DetachGroup(VfioGroup group)
    {
        using (_lock.EnterScope())
        {
            bool updateDirtyScope = false;
            Type1Group? emulated = _emulatedGroups.Find(g => ReferenceEquals(g.Group, group));
            if (emulated is not null)
            {
                updateDirtyScope = !emulated.PinnedPageDirtyScope;
                _emulatedGroups.Remove(emulated);
                if (_emulatedGroups.Count == 0 && _domains.Count == 0)
                {
                    RemoveAllDmasLocked();
                }
            }
            else
            {
                updateDirtyScope = DetachIommuGroupLocked(group);
            }
            if (updateDirtyScope)
            {
                _numNonPinnedGroups--;
                if (_dirtyTracking)
                {
                    MarkAllDirtyLocked();
                }
            }
            if (Trace.Enabled)
            {
                Emit("detach_group", null, TraceLog.F("group", group.Number));
            }
        }
    }

    private bool DetachIommuGroupLocked(VfioGroup group)
    {
        IovaList copy = _iovaList;
        bool updateDirtyScope = false;
        bool domainFreed = false;
        foreach (VfioDomain d in _domains)
        {
            Type1Group? entry = d.Groups.Find(g => ReferenceEquals(g.Group, group));
            if (entry is null)
            {
                continue;
            }
            entry.IommuGroup!.Detach();
            updateDirtyScope = !entry.PinnedPageDirtyScope;
            d.Groups.Remove(entry);
            if (d.Groups.Count == 0)
            {
                if (_domains.Count == 1)
                {
                    if (_emulatedGroups.Count == 0)
                    {
                        RemoveAllDmasLocked();
                    }
                    else
                    {
                        UnmapUnpinReaccountLocked();
                    }
                }
                d.Domain.Free();
                _domains.Remove(d);
                UpdatePgsizeBitmapLocked();
                domainFreed = true;
            }
            break;
        }
        if (!copy.IsEmpty)
        {
            _iovaList = RebuildIovaListLocked(domainFreed);
        }
        return updateDirtyScope;
    }

    // vfio_iommu_aper_expand + vfio_iommu_resv_refresh: the span of the remaining apertures (the whole
    // 64-bit space with none left) minus the reserved regions of every remaining group. A rebuild that
    // leaves nothing keeps the old list. The span is re-expanded only when a domain was freed; otherwise
    // the kernel rebuilds between the current first window's start and last window's end, so a departed
    // group's hole at either edge stays cut.
    private IovaList RebuildIovaListLocked(bool domainFreed)
    {
        ulong start = 0;
        ulong last = ulong.MaxValue;
        var regions = new List<ReservedRegion>();
        foreach (VfioDomain d in _domains)
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
            (start, last) = (_iovaList.Span.Start, _iovaList.Span.Last);
        }
        if (start > last)
        {
            return _iovaList;
        }
        IovaList rebuilt = IovaList.Of(new ByteRange(start, last)).CutHoles(regions);
        return rebuilt.IsEmpty ? _iovaList : rebuilt;
    }

    // The last IOMMU domain goes while emulated groups remain: unpin everything the IOMMU path pinned
    // and leave each mapping charged only for its external pins.
    private void UnmapUnpinReaccountLocked()
    {
        foreach (VfioDma dma in _tree.AllLocked())
        {
            long unlocked = UnmapUnpinLocked(dma, doAccounting: false);
            long locked = 0;
            foreach (VpfnRun run in dma.VpfnRuns())
            {
                locked += (long)(run.Pages - Machine.Memory.CountReservedOrInvalid(run.Pfn, run.Pages));
            }
            _accounting.LockAcctLocked(dma, locked - unlocked, async: true);
        }
    }

    private void RemoveAllDmasLocked()
    {
        foreach (VfioDma dma in _tree.AllLocked())
        {
            RemoveDmaLocked(dma);
        }
    }

    /// <summary>vfio_iommu_type1_release: every mapping goes, then every domain; the container returns to
    /// having no backend.</summary>
    public void Release()
    {
        using (_lock.EnterScope())
        {
            _emulatedGroups.Clear();
            RemoveAllDmasLocked();
            foreach (VfioDomain d in _domains)
            {
                foreach (Type1Group g in d.Groups)
                {
                    g.IommuGroup!.Detach();
                }
                d.Groups.Clear();
                d.Domain.Free();
            }
            _domains.Clear();
            _iovaList = IovaList.Empty;
            _numNonPinnedGroups = 0;
            _dirtyTracking = false;
            _notifierBug = null;
            if (Trace.Enabled)
            {
                Emit("release", null);
            }
        }
    }
}
