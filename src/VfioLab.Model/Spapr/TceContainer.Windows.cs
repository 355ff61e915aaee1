using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

// Dynamic DMA windows: tce_iommu_create_window, tce_iommu_create_default_window, tce_iommu_remove_window,
// tce_iommu_find_table and the TCE_CREATE/TCE_REMOVE ioctls.
internal sealed partial class TceContainer
{
    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_CREATE (v2): EPERM (another mm), ENXIO (no group), EFAULT (copy of 40 bytes),
    /// EINVAL (argsz, flags), then the pending default window and the new one (<see cref="CreateWindowLocked"/>);
    /// the window's bus address is written back in <c>start_addr</c> (EFAULT if that copy fails, the window stays).
    /// </summary>
    private Errno CreateIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        Errno e = MmSetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        if (_groups.Count == 0)
        {
            return Errno.ENXIO;
        }
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceCreate.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuSpaprTceCreate.MinSize]))
        {
            return Errno.EFAULT;
        }
        VfioIommuSpaprTceCreate.TryRead(raw, out VfioIommuSpaprTceCreate create);
        if (create.Argsz < VfioIommuSpaprTceCreate.MinSize || create.Flags != 0)
        {
            return Errno.EINVAL;
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
        return argument.TryCopyTo(0, raw[..VfioIommuSpaprTceCreate.MinSize]) ? Errno.None : Errno.EFAULT;
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_REMOVE (v2): EPERM, ENXIO (no group), EFAULT (copy of 16 bytes), EINVAL (argsz,
    /// flags). Address 0 while the default window is still pending just cancels it (QEMU removes the default
    /// window this way before creating its own); otherwise EINVAL when no window holds the address (any
    /// address inside a window names it), else the window's TCEs are cleared and the table freed.
    /// </summary>
    private Errno RemoveIoctlLocked(Process caller, ref IoctlArgument argument)
    {
        Errno e = MmSetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        if (_groups.Count == 0)
        {
            return Errno.ENXIO;
        }
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceRemove.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Errno.EFAULT;
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(raw);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(raw[VfioIommuSpaprTceRemove.Offsets.Flags..]);
        ulong start = BinaryPrimitives.ReadUInt64LittleEndian(raw[VfioIommuSpaprTceRemove.Offsets.StartAddr..]);
        if (argsz < VfioIommuSpaprTceRemove.MinSize || flags != 0)
        {
            return Errno.EINVAL;
        }
        if (_defWindowPending && start == 0)
        {
            _defWindowPending = false;
            Emit("spapr.default_window_cancelled", caller);
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
        AssertLocked();
        startAddr = 0;
        int num = Array.IndexOf(_tables, null);
        if (num < 0)
        {
            return Errno.ENOSPC;
        }
        TceTableGroup first = _groups[0].TableGroup;
        if (pageShift >= 64 || (first.PgSizes & (1UL << (int)pageShift)) == 0)
        {
            return Errno.EINVAL;
        }
        int shift = (int)pageShift;
        int lv = levels > TceTableGroup.MaxLevels ? 0 : (int)levels;
        ulong tableSize = TceTableGroup.GetTableSize(shift, windowSize, lv, PageShift);
        if (tableSize == 0)
        {
            return Errno.EINVAL;
        }
        AddressSpace mm = WorkingMmLocked(caller)!;
        ulong charge = tableSize >> PageShift;
        Errno e = AccountLockedVm(mm, caller, (long)charge);
        if (e != Errno.None)
        {
            return e;
        }
        e = first.CreateTable(num, shift, windowSize, lv, PageShift, charge, out TceTable? table);
        if (e != Errno.None)
        {
            _driver.Mms.AddLeak(mm, charge);
            Emit("spapr.table_charge_leaked", caller, Diagnostics.TraceLog.F("pages", charge));
            return e;
        }
        _tables[num] = table;
        _tableMm[num] = mm;
        foreach (TceGroup g in _groups)
        {
            e = g.TableGroup.SetWindow(num, table!);
            if (e != Errno.None)
            {
                foreach (TceGroup u in _groups)
                {
                    u.TableGroup.UnsetWindow(num);
                }
                FreeTableLocked(num);
                return e;
            }
        }
        startAddr = table!.Offset << table.PageShift;
        Emit("spapr.create_window", caller, Diagnostics.TraceLog.F("num", num), Diagnostics.TraceLog.F("start", startAddr),
            Diagnostics.TraceLog.F("page_shift", shift), Diagnostics.TraceLog.F("entries", table.Size));
        return Errno.None;
    }

    /// <summary><c>tce_iommu_create_default_window</c>: while pending, the 32-bit window of 4 KiB TCEs over
    /// <c>tce32_size</c> in one level; ENODEV without a group.</summary>
    private Errno CreateDefaultWindowLocked(Process? caller)
    {
        if (!_defWindowPending)
        {
            return Errno.None;
        }
        if (_groups.Count == 0)
        {
            return Errno.ENODEV;
        }
        Errno e = CreateWindowLocked(caller, 12, _groups[0].TableGroup.Tce32Size, 1, out _);
        if (e == Errno.None)
        {
            _defWindowPending = false;
        }
        return e;
    }

    /// <summary><c>tce_iommu_remove_window</c>: EINVAL when no window holds <paramref name="address"/>.</summary>
    private Errno RemoveWindowLocked(Process? caller, ulong address)
    {
        int num = FindTableLocked(address, out TceTable? table);
        if (num < 0)
        {
            return Errno.EINVAL;
        }
        foreach (TceGroup g in _groups)
        {
            g.TableGroup.UnsetWindow(num);
        }
        ClearLocked(table!, table!.Offset, table.Size, caller);
        FreeTableLocked(num);
        Emit("spapr.remove_window", caller, Diagnostics.TraceLog.F("num", num));
        return Errno.None;
    }

    /// <summary><c>tce_iommu_find_table</c>: the slot whose window holds bus address <paramref name="ioba"/>, or -1.</summary>
    private int FindTableLocked(ulong ioba, out TceTable? table)
    {
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
}
