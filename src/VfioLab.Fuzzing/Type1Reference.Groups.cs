using VfioLab.Abi;

namespace VfioLab.Fuzzing;

// Groups joining and leaving the reference's container: attach with replay into a new domain, detach with
// re-accounting, and the valid IOVA windows they leave.
internal sealed partial class Type1Reference
{
    /// <summary>SET_CONTAINER of group <paramref name="group"/> by <paramref name="caller"/>: EBUSY while a user address
    /// is invalidated. The mdev's group is
    /// emulated: no domain, nothing checked. An IOMMU group: EINVAL when a mapping lies outside its aperture (the
    /// SMMU's 48 bits) or over one of its reserved regions; a group sharing an existing domain's IOMMU reuses it;
    /// a new domain is replayed — copied run by run from the existing domain (EINVAL when a physically contiguous
    /// run is not aligned to its page), or, without one, every mapping pinned now from the caller's mm and
    /// charged to its owner (EFAULT, ENOMEM, EINVAL as MAP), all or nothing (but a gone owner's mapping keeps in its
    /// own locked_vm what replay charged before the failure).</summary>
    public long Attach(int group, int caller)
    {
        // Attaching could need pinning through an invalidated address (spec §3.13).
        if (VaddrInvalidCount > 0)
        {
            return Errno.EBUSY.AsReturn();
        }
        if (group == MdevGroup)
        {
            MdevAttached = true;
            return 0;
        }
        foreach (Mapping m in Mappings.Values)
        {
            if (group == 3 && (m.Last > DifferentialRig.SmmuApertureLast || Overlaps(m, DifferentialRig.SwMsiStart, DifferentialRig.SwMsiLast)))
            {
                return Errno.EINVAL.AsReturn();
            }
            if (group != 3 && DifferentialRig.AmdHoles.Any(h => Overlaps(m, h.Start, h.Last)))
            {
                return Errno.EINVAL.AsReturn();
            }
        }
        ulong oldPage = PageSize;
        bool reuse = group != 3 && (Groups.Contains(1) || Groups.Contains(2));
        if (!reuse && HasDomain && group == 3)
        {
            foreach (Mapping m in Mappings.Values)
            {
                if (!ReplayAligned(m, 0x10000))
                {
                    return Errno.EINVAL.AsReturn();
                }
            }
        }
        if (!HasDomain)
        {
            // Pin every mapping from the caller's mm; commit only once all succeeded.
            var frames = new List<(Mapping M, ulong[] Pfns, long Charged)>();
            var saved = new Dictionary<int, long>(LockedVm);
            foreach (Mapping m in Mappings.Values)
            {
                for (ulong i = 0; i < m.Size / Page; i++)
                {
                    m.Reserved[i] = IsReservedKind(caller, m.Vaddr + (i * Page));
                }
                ulong[] pfns = FramesFrom(caller, m);
                Errno e = PinAndMap(caller, m, pfns, group == 3, out long charged);
                if (e != Errno.None)
                {
                    // The unwind un-charges what replay charged, but an un-charge that finds the owner gone changes
                    // nothing (vfio_lock_acct): such a mapping keeps the charge in its own locked_vm.
                    foreach ((Mapping done, _, long c) in frames.Append((m, pfns, charged)))
                    {
                        if (!alive(done.Owner))
                        {
                            done.LockedVm += c;
                        }
                    }
                    LockedVm.Clear();
                    foreach ((int pid, long v) in saved)
                    {
                        LockedVm[pid] = v;
                    }
                    return e.AsReturn();
                }
                LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) + charged;
                frames.Add((m, pfns, charged));
            }
            foreach ((Mapping m, ulong[] pfns, long charged) in frames)
            {
                m.LockedVm += charged;
                m.Pfns = pfns;
                m.IommuMapped = true;
                NoteDeviceHold(m, caller);
            }
        }
        Groups.Add(group);
        ResizeIfPageChanged(oldPage);
        return 0;
    }

    /// <summary>Group <paramref name="group"/> left the container. The last IOMMU domain going while the mdev stays
    /// re-accounts: every mapping unpinned and left charged only for its external pins. Leaving an IOMMU group
    /// (outside pinned-page scope) while tracking marks every page dirty.</summary>
    public void Detach(int group)
    {
        if (group == MdevGroup)
        {
            MdevAttached = false;
            return;
        }
        ulong oldPage = PageSize;
        Groups.Remove(group);
        if (!HasDomain)
        {
            foreach (Mapping m in Mappings.Values)
            {
                if (alive(m.Owner))
                {
                    Account(m, m.Vpfns.Count - m.NonReserved);
                }
                m.IommuMapped = false;
                m.Pfns = [];
            }
        }
        if (Tracking)
        {
            foreach (Mapping m in Mappings.Values)
            {
                m.AllDirty(PageSize);
            }
        }
        ResizeIfPageChanged(oldPage);
    }

    // The valid IOVA list: every attached IOMMU group's aperture minus its reserved regions; without a domain
    // the list spans everything.
    private bool InsideWindows(ulong iova, ulong last)
    {
        if (Groups.Contains(3) && (last > DifferentialRig.SmmuApertureLast || (iova <= DifferentialRig.SwMsiLast && DifferentialRig.SwMsiStart <= last)))
        {
            return false;
        }
        if (Groups.Contains(1) || Groups.Contains(2))
        {
            foreach ((ulong start, ulong end) in DifferentialRig.AmdHoles)
            {
                if (iova <= end && start <= last)
                {
                    return false;
                }
            }
        }
        return true;
    }

    // Replay maps each maximal physically contiguous run; each must be aligned to the new domain's page.
    private static bool ReplayAligned(Mapping m, ulong page)
    {
        int i = 0;
        while (i < m.Pfns.Length)
        {
            int j = i + 1;
            while (j < m.Pfns.Length && m.Pfns[j] == m.Pfns[j - 1] + 1)
            {
                j++;
            }
            ulong iova = m.Iova + ((ulong)i * Page);
            ulong phys = m.Pfns[i] * Page;
            ulong len = (ulong)(j - i) * Page;
            if (((iova | phys | len) & (page - 1)) != 0)
            {
                return false;
            }
            i = j;
        }
        return true;
    }
}
