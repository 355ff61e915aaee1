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
            if (_domains.RemoveEmulatedLocked(group, out bool leftDirtyScope))
            {
                if (_domains.EmulatedGroupsLocked.Count == 0 && !_domains.HasDomainLocked)
                {
                    RemoveAllDmasLocked();
                }
            }
            else
            {
                bool hadWindows = !_domains.IovaListLocked.IsEmpty;
                VfioDomain? emptied = _domains.DetachIommuGroupLocked(group, out leftDirtyScope);
                if (emptied is not null)
                {
                    if (_domains.DomainsLocked.Count == 1)
                    {
                        if (_domains.EmulatedGroupsLocked.Count == 0)
                        {
                            RemoveAllDmasLocked();
                        }
                        else
                        {
                            _external.ReaccountToExternalPinsLocked();
                        }
                    }
                    _domains.FreeDomainLocked(emptied);
                    _dirty.OnPageSizesChangedLocked();
                }
                if (hadWindows)
                {
                    _domains.RebuildIovaListLocked(domainFreed: emptied is not null);
                }
            }
            if (leftDirtyScope)
            {
                _domains.LeaveNonPinnedLocked();
                _dirty.MarkAllDirtyLocked();
            }
            if (Trace.Enabled)
            {
                Emit("detach_group", null, TraceLog.F("group", group.Number));
            }
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
            _domains.ClearEmulatedLocked();
            RemoveAllDmasLocked();
            _domains.ReleaseLocked();
            _dirty.ResetLocked();
            _notifier.ResetLocked();
            if (Trace.Enabled)
            {
                Emit("release", null);
            }
        }
    }
}
