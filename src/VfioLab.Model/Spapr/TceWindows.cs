using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// The DMA windows of one sPAPR TCE container (<c>container-&gt;tables[]</c>, shared by every PE of the container): the
/// TCE_CREATE and TCE_REMOVE ioctls (<c>tce_iommu_create_window</c>, <c>tce_iommu_remove_window</c>), the default
/// 32-bit window created lazily (<c>def_window_pending</c>, <c>tce_iommu_create_default_window</c>),
/// <c>tce_iommu_find_table</c>, each table's <c>locked_vm</c> charge (<c>tce_iommu_free_table</c>), and
/// <c>tce_iommu_clear</c> with the release of what a TCE held (v1: its page pins, <see cref="TcePins"/>; v2: its
/// region's mapping count, <c>mm_iommu_mapped_dec</c>).
/// </summary>
/// <remarks>Lock: the container's lock (<see cref="TceContext.Lock"/>) protects <c>_tables</c>, <c>_tableMm</c> and
/// <c>_defWindowPending</c>; every <c>*Locked</c> member asserts it. A table's entries are behind its own lock, taken
/// after this one; the per-mm region lists after that.</remarks>
internal sealed class TceWindows(TceContext ctx, TceContainerMm mm, TceGroupSet groups)
{
    private readonly TceTable?[] _tables = new TceTable?[TceTableGroup.MaxWindows];
    private readonly AddressSpace?[] _tableMm = new AddressSpace?[TceTableGroup.MaxWindows];
    private bool _defWindowPending;

    /// <summary>The windows by slot (null: free).</summary>
    public IReadOnlyList<TceTable?> TablesLocked
    {
        get
        {
            ctx.AssertLocked();
            return _tables;
        }
    }

    /// <summary><c>def_window_pending</c>: the default window is created on first use.</summary>
    public bool DefaultWindowPendingLocked
    {
        get
        {
            ctx.AssertLocked();
            return _defWindowPending;
        }
    }

    /// <summary>Valid TCEs over every window (MAPPING_COUNT for sPAPR).</summary>
    public ulong ValidEntriesLocked()
    {
        ctx.AssertLocked();
        ulong n = 0;
        foreach (TceTable? t in _tables)
        {
            n += t?.ValidEntries ?? 0;
        }
        return n;
    }

    /// <summary>Free TCEs over every window (sPAPR has no mapping budget).</summary>
    public ulong FreeEntriesLocked()
    {
        ctx.AssertLocked();
        ulong n = 0;
        foreach (TceTable? t in _tables)
        {
            n += t is null ? 0 : t.Size - t.ValidEntries;
        }
        return n;
    }

    /// <summary>The first group attached while slot 0 is free: the default window becomes pending.</summary>
    public void MarkDefaultWindowPendingLocked()
    {
        ctx.AssertLocked();
        if (_tables[0] is null)
        {
            _defWindowPending = true;
        }
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_CREATE (v2): EPERM (another mm), ENXIO (no group), EFAULT (copy of 40 bytes),
    /// EINVAL (argsz, flags), then the pending default window and the new one (<see cref="CreateWindowLocked"/>);
    /// the window's bus address is written back in <c>start_addr</c> (EFAULT if that copy fails, the window stays).
    /// </summary>
    public Errno CreateIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        Errno e = mm.SetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        if (groups.CountLocked == 0)
        {
            return Refusals.Refuse(Errno.ENXIO, "tce_iommu_ioctl", "SPAPR_TCE_CREATE: the container has no group");
        }
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceCreate.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuSpaprTceCreate.MinSize]))
        {
            return Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "SPAPR_TCE_CREATE: copy_from_user of {0} bytes faulted", (ulong)VfioIommuSpaprTceCreate.MinSize);
        }
        VfioIommuSpaprTceCreate.TryRead(raw, out VfioIommuSpaprTceCreate create);
        if (create.Argsz < VfioIommuSpaprTceCreate.MinSize || create.Flags != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_ioctl", "SPAPR_TCE_CREATE: argsz {0} (minsz {1}) or flags 0x{2:x} (none allowed)", create.Argsz,
                (ulong)VfioIommuSpaprTceCreate.MinSize, create.Flags);
        }
        e = CreateDefaultWindowLocked(caller);
        if (e == Errno.None)
        {
            e = CreateWindowLocked(caller, create.PageShift, create.WindowSize, create.Levels, out create.StartAddr);
        }
        if (e != Errno.None)
        {
            return e;
        }
        create.Write(raw);
        return argument.TryCopyTo(0, raw[..VfioIommuSpaprTceCreate.MinSize])
            ? Errno.None
            : Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "SPAPR_TCE_CREATE: copy_to_user of the window's start 0x{0:x} faulted (the window stays)", create.StartAddr);
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_REMOVE (v2): EPERM, ENXIO (no group), EFAULT (copy of 16 bytes), EINVAL (argsz,
    /// flags). Address 0 while the default window is still pending just cancels it (QEMU removes the default
    /// window this way before creating its own); otherwise EINVAL when no window holds the address (any
    /// address inside a window names it), else the window's TCEs are cleared and the table freed.
    /// </summary>
    public Errno RemoveIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        ctx.AssertLocked();
        Errno e = mm.SetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        if (groups.CountLocked == 0)
        {
            return Refusals.Refuse(Errno.ENXIO, "tce_iommu_ioctl", "SPAPR_TCE_REMOVE: the container has no group");
        }
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceRemove.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Refusals.Refuse(Errno.EFAULT, "tce_iommu_ioctl", "SPAPR_TCE_REMOVE: copy_from_user of {0} bytes faulted", (ulong)raw.Length);
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(raw);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(raw[VfioIommuSpaprTceRemove.Offsets.Flags..]);
        ulong start = BinaryPrimitives.ReadUInt64LittleEndian(raw[VfioIommuSpaprTceRemove.Offsets.StartAddr..]);
        if (argsz < VfioIommuSpaprTceRemove.MinSize || flags != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_ioctl", "SPAPR_TCE_REMOVE: argsz {0} (minsz {1}) or flags 0x{2:x} (none allowed)", argsz,
                (ulong)VfioIommuSpaprTceRemove.MinSize, flags);
        }
        if (_defWindowPending && start == 0)
        {
            _defWindowPending = false;
            ctx.Emit(TraceKind.SpaprDefaultWindowCancelled, caller);
            return Errno.None;
        }
        return RemoveWindowLocked(caller, start);
    }

    /// <summary>
    /// <c>tce_iommu_create_window</c>: ENOSPC when both slots are taken; EINVAL when the PE does not support
    /// <paramref name="pageShift"/>; then <c>tce_iommu_create_table</c>: EINVAL when <c>get_table_size</c> is 0
    /// (levels outside 1..5, a window size not a power of two), ENOMEM when charging the table's memory
    /// passes RLIMIT_MEMLOCK, the platform's refusal (EINVAL for a table too deep, ENOMEM) — after which the
    /// kernel does not return the charge, and neither does the model (it is recorded as leaked); then the
    /// table is programmed into every PE, unwound on failure. Slot 0 sits at <c>tce32_start</c>, slot 1 at
    /// 1 &lt;&lt; 59.
    /// </summary>
    private Errno CreateWindowLocked(Process? caller, uint pageShift, ulong windowSize, uint levels, out ulong startAddr)
    {
        ctx.AssertLocked();
        startAddr = 0;
        int num = Array.IndexOf(_tables, null);
        if (num < 0)
        {
            return Refusals.Refuse(Errno.ENOSPC, "tce_iommu_create_window", "all {0} DMA windows are in use", (ulong)_tables.Length);
        }
        TceTableGroup first = groups.FirstLocked;
        if (pageShift >= 64 || (first.PgSizes & (1UL << (int)pageShift)) == 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_create_window", "page_shift {0} is not among the PE's TCE sizes 0x{1:x}", pageShift, first.PgSizes);
        }
        int shift = (int)pageShift;
        int lv = levels > TceTableGroup.MaxLevels ? 0 : (int)levels;
        ulong tableSize = TceTableGroup.GetTableSize(shift, windowSize, lv, ctx.PageShift);
        if (tableSize == 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "pnv_pci_ioda2_get_table_size", "no table fits a window of 0x{0:x} with page_shift {1} and {2} levels", windowSize,
                pageShift, levels);
        }
        AddressSpace owner = mm.WorkingLocked(caller)!;
        ulong charge = tableSize >> ctx.PageShift;
        Errno e = mm.Account(owner, caller, (long)charge);
        if (e != Errno.None)
        {
            return e;
        }
        e = first.CreateTable(num, shift, windowSize, lv, ctx.PageShift, charge, out TceTable? table);
        if (e != Errno.None)
        {
            ctx.Mms.AddLeak(owner, charge);
            ctx.Emit(TraceKind.SpaprTableChargeLeaked, caller, TraceLog.F("pages", charge));
            return e;
        }
        _tables[num] = table;
        _tableMm[num] = owner;
        e = groups.SetWindowLocked(num, table!);
        if (e != Errno.None)
        {
            FreeTableLocked(num);
            return e;
        }
        startAddr = table!.Offset << table.PageShift;
        ctx.Emit(TraceKind.SpaprCreateWindow, caller, TraceLog.F("num", num), TraceLog.F("start", startAddr),
            TraceLog.F("page_shift", shift), TraceLog.F("entries", table.Size));
        return Errno.None;
    }

    /// <summary><c>tce_iommu_create_default_window</c>: while pending, the 32-bit window of 4 KiB TCEs over
    /// <c>tce32_size</c> in one level; ENODEV without a group.</summary>
    public Errno CreateDefaultWindowLocked(Process? caller)
    {
        ctx.AssertLocked();
        if (!_defWindowPending)
        {
            return Errno.None;
        }
        if (groups.CountLocked == 0)
        {
            return Refusals.Refuse(Errno.ENODEV, "tce_iommu_create_default_window", "the container has no group");
        }
        Errno e = CreateWindowLocked(caller, 12, groups.FirstLocked.Tce32Size, 1, out _);
        if (e == Errno.None)
        {
            _defWindowPending = false;
        }
        return e;
    }

    /// <summary><c>tce_iommu_remove_window</c>: EINVAL when no window holds <paramref name="address"/>.</summary>
    private Errno RemoveWindowLocked(Process? caller, ulong address)
    {
        ctx.AssertLocked();
        int num = FindTableLocked(address, out TceTable? table);
        if (num < 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_remove_window", "no DMA window holds address 0x{0:x}", address);
        }
        groups.UnsetWindowLocked(num);
        // Past the window too (see TceTable): Linux's tce_iommu_clear stops at it_size and leaks those; the model
        // frees nothing with TCEs in it.
        ClearLocked(table!, table!.Offset, ulong.MaxValue - table.Offset, caller);
        FreeTableLocked(num);
        ctx.Emit(TraceKind.SpaprRemoveWindow, caller, TraceLog.F("num", num));
        return Errno.None;
    }

    /// <summary><c>tce_iommu_find_table</c>: the slot whose window holds bus address <paramref name="ioba"/>, or -1.</summary>
    public int FindTableLocked(ulong ioba, out TceTable? table)
    {
        ctx.AssertLocked();
        for (int i = 0; i < _tables.Length; i++)
        {
            if (_tables[i] is { } t && t.ContainsEntry(ioba >> t.PageShift))
            {
                table = t;
                return i;
            }
        }
        table = null;
        return -1;
    }
    /// <summary><c>tce_iommu_free_table</c>: drops the table from slot <paramref name="n"/> and returns its charge.</summary>
    private void FreeTableLocked(int n)
    {
        ctx.AssertLocked();
        TceTable t = _tables[n]!;
        _tables[n] = null;
        AddressSpace? owner = _tableMm[n];
        _tableMm[n] = null;
        if (owner is not null)
        {
            mm.Account(owner, null, -(long)t.ChargedPages);
        }
    }

    /// <summary><c>tce_iommu_clear</c>: every valid TCE of the range becomes invalid and its page (v1) or region
    /// mapping count (v2) is released. Never fails.</summary>
    public void ClearLocked(TceTable table, ulong entry, ulong pages, Process? caller)
    {
        ctx.AssertLocked();
        var cleared = new List<Run<TceEntryRun>>();
        table.Clear(entry, pages, cleared);
        ReleaseEntriesLocked(cleared);
        if (cleared.Count > 0)
        {
            ctx.Emit(TraceKind.SpaprClear, caller, TraceLog.F("entry", entry), TraceLog.F("runs", cleared.Count));
        }
    }

    // Release the run of TCEs that a clear or an exchange removed: v1 unpins each entry's page (dirty when the
    // device could write), v2 drops the mapping count of the region the entry's userspace address is in.
    public void ReleaseEntriesLocked(List<Run<TceEntryRun>> runs)
    {
        ctx.AssertLocked();
        foreach (Run<TceEntryRun> r in runs)
        {
            ulong count = r.Last - r.Start + 1;
            if (ctx.V2)
            {
                MappedDecLocked(r.Value, count);
            }
            else
            {
                TcePins.Unpin(ctx.Machine, r.Value.Hpa, count, r.Value.PageShift, (r.Value.Prot & IommuProt.Write) != 0);
            }
        }
    }
    /// <summary><c>mm_iommu_mapped_dec</c> for <paramref name="count"/> TCEs from <paramref name="run"/>: each
    /// lowers the mapping count of the region holding its user address (in the mm recorded in the entry), never
    /// below 1; an address in no region is skipped (the kernel's "was not cached").</summary>
    private void MappedDecLocked(TceEntryRun run, ulong count)
    {
        ctx.AssertLocked();
        MmIommuContext? regions = ctx.Mms.ById(run.MmId);
        ulong tceSize = 1UL << run.PageShift;
        ulong i = 0;
        while (i < count)
        {
            ulong ua = run.Ua + (i << run.PageShift);
            MmIommuRegion? r = regions?.Lookup(ua, tceSize, ctx.PageShift);
            if (r is null)
            {
                i++;
                continue;
            }
            ulong inRegion = Math.Min(count - i, (r.Ua + r.Size(ctx.PageShift) - ua) >> run.PageShift);
            if (r.Mapped > 1)
            {
                r.Mapped = Math.Max(1, r.Mapped - inRegion);
            }
            i += inRegion;
        }
    }

    /// <summary>Release: every window's TCEs are cleared (v1 unpins each page, v2 drops the regions' mapping counts) and
    /// its table freed (its charge returned).</summary>
    public void ReleaseLocked()
    {
        ctx.AssertLocked();
        for (int n = 0; n < _tables.Length; n++)
        {
            if (_tables[n] is { } t)
            {
                ClearLocked(t, t.Offset, ulong.MaxValue - t.Offset, null);   // past the window too, as in RemoveWindowLocked
                FreeTableLocked(n);
            }
        }
    }

    /// <summary>The windows as the snapshot copies them (table, charged mm, valid TCE runs).</summary>
    public List<TceWindowSnapshot> SnapshotLocked()
    {
        ctx.AssertLocked();
        var windows = new List<TceWindowSnapshot>();
        for (int n = 0; n < _tables.Length; n++)
        {
            if (_tables[n] is { } t)
            {
                windows.Add(new TceWindowSnapshot(t, _tableMm[n], t.Runs()));
            }
        }
        return windows;
    }
}
