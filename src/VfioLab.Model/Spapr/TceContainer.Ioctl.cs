using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

// tce_iommu_ioctl: the mm check, GET_INFO, ENABLE/DISABLE and the dispatch of every container ioctl.
internal sealed partial class TceContainer
{
    /// <inheritdoc />
    /// <remarks>Every request is EPERM from an mm other than the container's (before anything else; not under
    /// quirk <c>spapr-tce-current-mm</c>). The v2-only requests (REGISTER/UNREGISTER_MEMORY, TCE_CREATE/REMOVE)
    /// and the v1-only ENABLE/DISABLE fall through to ENOTTY on the other version; VFIO_EEH_PE_OP is not
    /// modelled (ENOTTY).</remarks>
    public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument)
    {
        Process caller = context.Process;
        using (_lock.EnterScope())
        {
            if (Behavior.ContainerRecordsMm && _mm is not null && !ReferenceEquals(_mm, caller.Mm))
            {
                Emit("spapr.foreign_mm", caller, Diagnostics.TraceLog.F("request", request));
                return Errno.EPERM.AsReturn();
            }
            return request switch
            {
                VfioIoctl.IommuSpaprTceGetInfo => GetInfoLocked(ref argument).AsReturn(),
                VfioIoctl.IommuMapDma => MapDmaLocked(caller, ref argument),
                VfioIoctl.IommuUnmapDma => UnmapDmaLocked(caller, ref argument),
                VfioIoctl.IommuSpaprRegisterMemory when V2 => RegisterMemoryLocked(caller, ref argument),
                VfioIoctl.IommuSpaprUnregisterMemory when V2 => UnregisterMemoryLocked(caller, ref argument).AsReturn(),
                VfioIoctl.IommuEnable when !V2 => EnableLocked(caller).AsReturn(),
                VfioIoctl.IommuDisable when !V2 => DisableIoctlLocked(),
                VfioIoctl.IommuSpaprTceCreate when V2 => CreateIoctlLocked(caller, ref argument).AsReturn(),
                VfioIoctl.IommuSpaprTceRemove when V2 => RemoveIoctlLocked(caller, ref argument).AsReturn(),
                _ => Errno.ENOTTY.AsReturn(),
            };
        }
    }

    /// <summary>
    /// VFIO_IOMMU_SPAPR_TCE_GET_INFO: ENXIO without a group, EFAULT (copy of 16 bytes), EINVAL (argsz &lt; 16).
    /// Reports the first PE's default window; a v2 container also gets the DDW flag and limits (page sizes,
    /// two windows, five levels), copied back only when argsz covers them (32 bytes), else 16 bytes.
    /// </summary>
    private Errno GetInfoLocked(ref IoctlArgument argument)
    {
        if (_groups.Count == 0)
        {
            return Errno.ENXIO;
        }
        TceTableGroup tg = _groups[0].TableGroup;
        Span<byte> raw = stackalloc byte[VfioIommuSpaprTceInfo.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuSpaprTceInfo.MinSize]))
        {
            return Errno.EFAULT;
        }
        VfioIommuSpaprTceInfo.TryRead(raw, VfioIommuSpaprTceInfo.MinSize, out VfioIommuSpaprTceInfo info);
        if (info.Argsz < VfioIommuSpaprTceInfo.MinSize)
        {
            return Errno.EINVAL;
        }
        info.Dma32WindowStart = (uint)tg.Tce32Start;
        info.Dma32WindowSize = (uint)tg.Tce32Size;
        info.Flags = SpaprInfoFlags.None;
        info.Ddw = default;
        if (V2 && tg.MaxDynamicWindows > 0)
        {
            info.Flags |= SpaprInfoFlags.Ddw;
            info.Ddw.Pgsizes = tg.PgSizes;
            info.Ddw.MaxDynamicWindowsSupported = (uint)tg.MaxDynamicWindows;
            info.Ddw.Levels = TceTableGroup.MaxLevels;
        }
        int length = info.Argsz >= VfioIommuSpaprTceInfo.DdwMinSize ? VfioIommuSpaprTceInfo.DdwMinSize : VfioIommuSpaprTceInfo.MinSize;
        info.Write(raw);
        return argument.TryCopyTo(0, raw[..length]) ? Errno.None : Errno.EFAULT;
    }

    /// <summary>
    /// <c>tce_iommu_enable</c> (v1 VFIO_IOMMU_ENABLE): EBUSY when enabled, ENODEV without a group, EPERM from
    /// another mm (<c>tce_iommu_mm_set</c>), ENOMEM past RLIMIT_MEMLOCK without CAP_IPC_LOCK. Charges the whole
    /// default window (<c>tce32_size &gt;&gt; PAGE_SHIFT</c>) once: the worst case the guest could map.
    /// </summary>
    private Errno EnableLocked(Process caller)
    {
        if (_enabled)
        {
            return Errno.EBUSY;
        }
        if (_groups.Count == 0)
        {
            return Errno.ENODEV;
        }
        TceTableGroup tg = _groups[0].TableGroup;
        if (tg.Tce32Size == 0)
        {
            return Errno.EPERM;
        }
        Errno e = MmSetLocked(caller);
        if (e != Errno.None)
        {
            return e;
        }
        AddressSpace mm = WorkingMmLocked(caller)!;
        ulong locked = tg.Tce32Size >> PageShift;
        e = AccountLockedVm(mm, caller, (long)locked);
        if (e != Errno.None)
        {
            return e;
        }
        _lockedPages = locked;
        _lockedMm = mm;
        _enabled = true;
        Emit("spapr.enable", caller, Diagnostics.TraceLog.F("locked_pages", locked));
        return Errno.None;
    }

    private long DisableIoctlLocked()
    {
        DisableLocked();
        return 0;
    }

    /// <summary><c>tce_iommu_disable</c>: returns ENABLE's charge. Mappings stay (MAP and UNMAP are EPERM
    /// until the next ENABLE). Never fails.</summary>
    private void DisableLocked()
    {
        AssertLocked();
        if (!_enabled)
        {
            return;
        }
        _enabled = false;
        if (_lockedMm is not null)
        {
            AccountLockedVm(_lockedMm, null, -(long)_lockedPages);
        }
        _lockedPages = 0;
        _lockedMm = null;
    }
}
