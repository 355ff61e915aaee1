using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// VFIO_IOMMU_MAP_DMA (spec §1.5), the VADDR update (§3.12, §3.13) and the DMA tree.
internal sealed partial class VfioIommu
{
    /// <summary>
    /// VFIO_IOMMU_MAP_DMA: EFAULT (struct copy), EINVAL (argsz, flags, prot/VADDR mix, size 0,
    /// alignment, outside the valid IOVA windows), EOVERFLOW (v6.18: range wraps), ENOENT/EINVAL (VADDR
    /// with no or a mismatching invalidated mapping), EEXIST (overlap), ENOSPC (no slot left), ENOMEM
    /// (RLIMIT_MEMLOCK, allocation), EFAULT (unpinnable memory), ENODEV (no mm), EINTR, or the IOMMU
    /// driver's map error. All or nothing.
    /// </summary>
    private Errno MapDma(VfioCallContext context, ref IoctlArgument argument)
    {
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1DmaMap.MinSize]))
        {
            return Errno.EFAULT;
        }
        VfioIommuType1DmaMap.TryRead(raw, VfioIommuType1DmaMap.MinSize, out VfioIommuType1DmaMap map);
        if (map.Argsz < VfioIommuType1DmaMap.MinSize || (map.Flags & ~(DmaMapFlags.Read | DmaMapFlags.Write | DmaMapFlags.Vaddr)) != 0)
        {
            return Errno.EINVAL;
        }
        return MapDma(context.Process, map.Iova, map.Vaddr, map.Size, map.Flags);
    }

    /// <summary>vfio_dma_do_map with a decoded request (also the typed entry point for tests and benchmarks).</summary>
    public Errno MapDma(Process caller, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        if (Behavior.OverflowIsEoverflow)
        {
            if (size == 0)
            {
                return Errno.EINVAL;
            }
            if (!ByteRange.TryFromStartSize(iova, size, out _) || !ByteRange.TryFromStartSize(vaddr, size, out _))
            {
                return Errno.EOVERFLOW;
            }
        }
        IommuProt prot = ((flags & DmaMapFlags.Write) != 0 ? IommuProt.Write : 0) | ((flags & DmaMapFlags.Read) != 0 ? IommuProt.Read : 0);
        bool vaddrUpdate = (flags & DmaMapFlags.Vaddr) != 0;
        if ((prot != 0 && vaddrUpdate) || (prot == 0 && !vaddrUpdate))
        {
            return Errno.EINVAL;
        }
        using (_lock.EnterScope())
        {
            ulong pgsize = _domains.MinPageSizeLocked;
            if (size == 0 || ((size | iova | vaddr) & (pgsize - 1)) != 0)
            {
                return Errno.EINVAL;
            }
            if (!ByteRange.TryFromStartSize(iova, size, out ByteRange range) || !ByteRange.TryFromStartSize(vaddr, size, out _))
            {
                return Errno.EINVAL;
            }
            bool overlaps = _tree.TryFindFirstLocked(range, out VfioDma? hit);
            if (vaddrUpdate)
            {
                return UpdateVaddrLocked(caller, hit, range, new HostVirtAddr(vaddr));
            }
            if (overlaps)
            {
                return Errno.EEXIST;
            }
            if (_tree.DmaAvailLocked == 0)
            {
                return Errno.ENOSPC;
            }
            if (!_domains.IovaListLocked.ContainsWhole(range))
            {
                return Errno.EINVAL;
            }
            if (Faults.ShouldFail("dma_alloc"))
            {
                return Errno.ENOMEM;
            }
            AddressSpace mm = caller.Mm ?? caller.LastMm;
            var dma = new VfioDma(range, new HostVirtAddr(vaddr), prot, caller, mm, caller.CapIpcLock, PageShift);
            _tree.InsertLocked(dma);
            Errno error = Errno.None;
            if (!_domains.HasDomainLocked)
            {
                dma.Size = size;
            }
            else
            {
                error = _pinning.PinMapDmaLocked(dma, caller);
                if (error != Errno.None)
                {
                    RemoveDmaLocked(dma);
                    return error;
                }
            }
            if (_dirty.TrackingLocked)
            {
                error = _dirty.AllocateBitmapLocked(dma, pgsize);
                if (error != Errno.None)
                {
                    RemoveDmaLocked(dma);
                    return error;
                }
            }
            if (Trace.Enabled)
            {
                Emit("map_dma", caller, TraceLog.F("iova", iova), TraceLog.F("vaddr", vaddr), TraceLog.F("size", size),
                    TraceLog.F("prot", (int)prot), TraceLog.F("locked_vm", dma.LockedVm));
            }
            return Errno.None;
        }
    }

    // MAP_DMA with VADDR: only an invalidated mapping with exactly this range may get a new vaddr; its charge
    // moves to the caller's mm first (vfio_change_dma_owner, v6.3+).
    private Errno UpdateVaddrLocked(Process caller, VfioDma? dma, ByteRange range, HostVirtAddr vaddr)
    {
        if (dma is null)
        {
            return Errno.ENOENT;
        }
        if (!dma.VaddrInvalid || dma.Range != range)
        {
            return Errno.EINVAL;
        }
        Errno e = _accounting.ChangeOwnerLocked(dma, caller);
        if (e != Errno.None)
        {
            return e;
        }
        dma.Vaddr = vaddr;
        _tree.RevalidateVaddrLocked(dma);
        if (Trace.Enabled)
        {
            Emit("map_dma_vaddr", caller, TraceLog.F("iova", range.Start), TraceLog.F("vaddr", vaddr.Value), TraceLog.F("size", range.Size));
        }
        return Errno.None;
    }

    /// <summary>vfio_remove_dma: unmaps, unpins and un-charges the mapping, unlinks it and returns its slot.</summary>
    private void RemoveDmaLocked(VfioDma dma)
    {
        AssertLocked();
        if (dma.HasExternalPins && Trace.Enabled)
        {
            // WARN_ON(!RB_EMPTY_ROOT(&dma->pfn_list)): the external pins are forgotten, never released (a leak
            // the checker reports as pins-balanced); drivers must unpin before their device closes.
            Emit("warn", dma.Task, TraceLog.F("what", "removing a mapping with external pins"), TraceLog.F("iova", dma.Iova.Value),
                TraceLog.F("pins", dma.VpfnCount));
        }
        _pinning.UnmapUnpinLocked(dma, doAccounting: true);
        _holds.ReleaseLocked(dma);
        _tree.RemoveLocked(dma);
        dma.Bitmap = null;
        if (Trace.Enabled)
        {
            Emit("remove_dma", dma.Task, TraceLog.F("iova", dma.Iova.Value), TraceLog.F("size", dma.RequestedSize));
        }
    }
}
