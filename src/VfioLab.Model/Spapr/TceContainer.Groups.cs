using VfioLab.Abi;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

// attach_group, detach_group and release (tce_iommu_attach_group, tce_iommu_detach_group, tce_iommu_release).
internal sealed partial class TceContainer
{
    /// <inheritdoc />
    /// <returns>EINVAL for an emulated (mdev) group; ENODEV for a group that is not a PE (no table group);
    /// EBUSY for a second group of a v1 container or a group already attached; the error of programming the
    /// container's windows into the PE (everything unwound).</returns>
    public Errno AttachGroup(VfioGroup group, Process? current)
    {
        if (group.Type == VfioGroupType.EmulatedIommu)
        {
            return Errno.EINVAL;
        }
        using (_lock.EnterScope())
        {
            TceTableGroup? tg = group.Backing.IommuGroup?.TableGroup;
            if (tg is null)
            {
                return Errno.ENODEV;
            }
            // v2 needs dynamic windows; every modelled PE (IODA2) has them, so that EINVAL cannot arise.
            if (!V2 && _groups.Count > 0)
            {
                return Errno.EBUSY;
            }
            foreach (TceGroup g in _groups)
            {
                if (ReferenceEquals(g.Group, group))
                {
                    return Errno.EBUSY;
                }
            }
            Errno ret = TakeOwnershipLocked(tg);
            if (_groups.Count == 0 && _tables[0] is null)
            {
                _defWindowPending = true;
            }
            if (ret != Errno.None)
            {
                return ret;
            }
            _groups.Add(new TceGroup(group, tg));
            Emit("spapr.attach_group", current, Diagnostics.TraceLog.F("group", group.Number));
            return Errno.None;
        }
    }

    /// <inheritdoc />
    /// <remarks>The PE's windows are unset and the platform takes it back; the container keeps its tables and
    /// their TCEs (and pins) until it is released.</remarks>
    public void DetachGroup(VfioGroup group)
    {
        using (_lock.EnterScope())
        {
            int i = _groups.FindIndex(g => ReferenceEquals(g.Group, group));
            if (i < 0)
            {
                return;
            }
            TceTableGroup tg = _groups[i].TableGroup;
            _groups.RemoveAt(i);
            for (int n = 0; n < _tables.Length; n++)
            {
                if (_tables[n] is not null)
                {
                    tg.UnsetWindow(n);
                }
            }
            tg.ReleaseOwnership();
            Emit("spapr.detach_group", null, Diagnostics.TraceLog.F("group", group.Number));
        }
    }

    /// <inheritdoc />
    /// <remarks>Every group is detached; every table is cleared (v1 unpins each TCE's page, v2 drops the
    /// regions' mapping counts) and freed (its charge returned); every region of the container's list is put
    /// (the last put unpins and un-charges it); v1's ENABLE charge is returned. Never fails.</remarks>
    public void Release()
    {
        List<TceGroup> groups;
        using (_lock.EnterScope())
        {
            groups = [.. _groups];
        }
        foreach (TceGroup g in groups)
        {
            DetachGroup(g.Group);
        }
        using (_lock.EnterScope())
        {
            for (int n = 0; n < _tables.Length; n++)
            {
                if (_tables[n] is { } t)
                {
                    ClearLocked(t, t.Offset, t.Size, null);
                    FreeTableLocked(n);
                }
            }
            foreach (MmIommuRegion r in _prereg.ToArray())
            {
                // The kernel WARNs when this put fails (another container still maps the region); the entry stays.
                PreregFreeLocked(r);
            }
            DisableLocked();
            _released = true;
        }
        _driver.Forget(this);
    }

    /// <summary><c>tce_iommu_take_ownership</c>: the PE is taken from the platform and every window the container
    /// already has is programmed into it; on a failure the windows are unset and the PE given back.</summary>
    private Errno TakeOwnershipLocked(TceTableGroup tg)
    {
        tg.TakeOwnership();
        for (int n = 0; n < _tables.Length; n++)
        {
            if (_tables[n] is { } t)
            {
                Errno e = tg.SetWindow(n, t);
                if (e != Errno.None)
                {
                    for (int k = 0; k < _tables.Length; k++)
                    {
                        tg.UnsetWindow(k);
                    }
                    tg.ReleaseOwnership();
                    return e;
                }
            }
        }
        return Errno.None;
    }

    /// <summary><c>tce_iommu_free_table</c>: drops the table from slot <paramref name="n"/> and returns its charge.</summary>
    private void FreeTableLocked(int n)
    {
        AssertLocked();
        TceTable t = _tables[n]!;
        _tables[n] = null;
        AddressSpace? mm = _tableMm[n];
        _tableMm[n] = null;
        if (mm is not null)
        {
            AccountLockedVm(mm, null, -(long)t.ChargedPages);
        }
    }

    // Release the run of TCEs that a clear or an exchange removed: v1 unpins each entry's page (dirty when the
    // device could write), v2 drops the mapping count of the region the entry's userspace address is in.
    private void ReleaseEntriesLocked(List<Run<TceEntryRun>> runs)
    {
        foreach (Run<TceEntryRun> r in runs)
        {
            ulong count = r.Last - r.Start + 1;
            if (V2)
            {
                MappedDecLocked(r.Value, count);
            }
            else
            {
                TcePins.Unpin(Machine, r.Value.Hpa, count, r.Value.PageShift, (r.Value.Prot & IommuProt.Write) != 0);
            }
        }
    }
}
