using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// Group attach with domain reuse and replay (spec §2.6, §2.8, §3.9, §3.10).
internal sealed partial class VfioIommu
{
    /// <summary>
    /// vfio_iommu_type1_attach_group: EBUSY (vaddrs invalidated), EINVAL (already attached, aperture or
    /// reserved-region conflict with existing mappings, no valid IOVA left), ENOMEM (the group's entry, fault site
    /// <c>type1_group_alloc</c>), EPERM (no isolated MSI and
    /// <c>allow_unsafe_interrupts</c> off), the IOMMU core's allocation or attach error, or a replay error
    /// (pinning from <paramref name="current"/>'s mm, as Linux does). Any failure leaves everything as before.
    /// </summary>
    public Errno AttachGroup(VfioGroup group, Process? current)
    {
        using (_lock.EnterScope())
        {
            if (_tree.VaddrInvalidCountLocked > 0)
            {
                return Errno.EBUSY;
            }
            if (_domains.FindGroupLocked(group) is not null)
            {
                return Errno.EINVAL;
            }
            // kzalloc of the struct vfio_iommu_group, for an emulated (mdev) group as for a physical one.
            if (Faults.ShouldFail("type1_group_alloc"))
            {
                return Errno.ENOMEM;
            }
            IommuGroup? iommuGroup = group.Backing.IommuGroup;
            if (group.Type == VfioGroupType.EmulatedIommu || iommuGroup is null || iommuGroup.IsEmulated)
            {
                _domains.AddEmulatedLocked(group);
                if (Trace.Enabled)
                {
                    Emit("attach_group", current, TraceLog.F("group", group.Number), TraceLog.F("emulated", true));
                }
                return Errno.None;
            }
            Errno e = _domains.AttachIommuGroupLocked(group, iommuGroup, current, out DomainSet.PendingAttach? pending);
            if (e != Errno.None || pending is null)
            {
                return e;
            }
            e = _replay.ReplayLocked(pending.Domain, current);
            if (e != Errno.None)
            {
                _domains.AbandonAttachLocked(pending);
                return e;
            }
            _domains.CompleteAttachLocked(pending, current);
            _dirty.OnPageSizesChangedLocked();
            return Errno.None;
        }
    }
}
