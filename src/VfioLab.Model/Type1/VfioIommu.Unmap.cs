using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// VFIO_IOMMU_UNMAP_DMA (spec §1.6): v1 and v2 rules, ALL, VADDR invalidation, GET_DIRTY_BITMAP.
internal sealed partial class VfioIommu
{
    private Errno UnmapDma(VfioCallContext context, ref IoctlArgument argument)
    {
        Span<byte> raw = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Errno.EFAULT;
        }
        VfioIommuType1DmaUnmap.TryRead(raw, out VfioIommuType1DmaUnmap unmap);
        const DmaUnmapFlags known = DmaUnmapFlags.GetDirtyBitmap | DmaUnmapFlags.All | DmaUnmapFlags.Vaddr;
        if (unmap.Argsz < VfioIommuType1DmaUnmap.MinSize || (unmap.Flags & ~known) != 0)
        {
            return Errno.EINVAL;
        }
        VfioBitmap bitmap = default;
        if ((unmap.Flags & DmaUnmapFlags.GetDirtyBitmap) != 0)
        {
            if ((unmap.Flags & (DmaUnmapFlags.All | DmaUnmapFlags.Vaddr)) != 0 || unmap.Argsz < VfioIommuType1DmaUnmap.MinSizeWithBitmap)
            {
                return Errno.EINVAL;
            }
            Span<byte> b = stackalloc byte[VfioBitmap.SizeOf];
            if (!argument.TryCopyFrom(VfioIommuType1DmaUnmap.Offsets.Data, b))
            {
                return Errno.EFAULT;
            }
            VfioBitmap.TryRead(b, out bitmap);
            Errno check = DirtyTracker.CheckUserBitmap(bitmap, unmap.Size);
            if (check != Errno.None)
            {
                return check;
            }
        }
        Errno e = UnmapDma(context.Process, context.Memory, unmap.Iova, unmap.Size, unmap.Flags, bitmap, out ulong unmapped);
        if (e != Errno.None)
        {
            return e;
        }
        unmap.Size = unmapped;
        raw.Clear();
        unmap.Write(raw);
        return argument.TryCopyTo(0, raw[..VfioIommuType1DmaUnmap.MinSize]) ? Errno.None : Errno.EFAULT;
    }

    /// <summary>vfio_dma_do_unmap with a decoded request; <paramref name="unmapped"/> is what the kernel
    /// writes into <c>size</c>. EBUSY (VADDR with emulated groups), EINVAL (alignment, ALL with a range,
    /// dirty bitmap without tracking or with another page size, v2 bisection, VADDR twice), EOVERFLOW
    /// (v6.18 wrap), EFAULT (bitmap copy; mappings already removed stay removed). A mapping that devices pin
    /// is announced to every registered device with the lock released, and the walk starts over (spec §3.8);
    /// EBUSY is the model's answer where the kernel BUG()s: the same mapping still pinned after 11
    /// notifications (the mapping stays, see <see cref="NotifierRetryBug"/>).</summary>
    public Errno UnmapDma(Process caller, IUserMemory memory, ulong iova, ulong size, DmaUnmapFlags flags, VfioBitmap bitmap, out ulong unmapped)
    {
        unmapped = 0;
        bool all = (flags & DmaUnmapFlags.All) != 0;
        bool invalidateVaddr = (flags & DmaUnmapFlags.Vaddr) != 0;
        bool getBitmap = (flags & DmaUnmapFlags.GetDirtyBitmap) != 0;
        using (_lock.EnterScope())
        {
            ulong pgsize = _domains.MinPageSizeLocked;
            if (invalidateVaddr && _domains.EmulatedGroupsLocked.Count > 0)
            {
                return Errno.EBUSY;
            }
            if ((iova & (pgsize - 1)) != 0)
            {
                return Errno.EINVAL;
            }
            ByteRange range;
            if (all)
            {
                if (iova != 0 || size != 0)
                {
                    return Errno.EINVAL;
                }
                range = new ByteRange(0, ulong.MaxValue);
            }
            else
            {
                if (size == 0 || (size & (pgsize - 1)) != 0)
                {
                    return Errno.EINVAL;
                }
                if (!ByteRange.TryFromStartSize(iova, size, out range))
                {
                    return Behavior.OverflowIsEoverflow ? Errno.EOVERFLOW : Errno.EINVAL;
                }
            }
            if (getBitmap && (!_dirty.TrackingLocked || bitmap.Pgsize != pgsize))
            {
                return Errno.EINVAL;
            }
            Errno ret = Errno.None;
            VfioDma? dmaLast = null;
            int retries = 0;
            bool again = true;
            while (again)
            {
                again = false;
                // The v2 rules are checked again after every notification: mappings may have changed while the
                // lock was released.
                if (V2 && !all && !_tree.NoBisectionLocked(range))
                {
                    ret = Errno.EINVAL;
                    break;
                }
                List<VfioDma> candidates = _tree.OverlappingLocked(range);
                for (int i = 0; i < candidates.Count; i++)
                {
                    VfioDma dma = candidates[i];
                    if (!V2 && range.Start > dma.Range.Start)
                    {
                        break;
                    }
                    if (Behavior.UnmapOwnerCheck && !ReferenceEquals(dma.Task.Mm, caller.Mm))
                    {
                        // v4.10-v5.19 (8f0d5bb95f76 until ffed0518d871): only a task sharing the owner's current mm
                        // may unmap; the walk ends here with success and the size removed so far.
                        break;
                    }
                    if (invalidateVaddr)
                    {
                        if (dma.VaddrInvalid)
                        {
                            for (int j = 0; j < i; j++)
                            {
                                _tree.RevalidateVaddrLocked(candidates[j]);
                            }
                            unmapped = 0;
                            ret = Errno.EINVAL;
                            break;
                        }
                        _tree.InvalidateVaddrLocked(dma);
                        unmapped += dma.Size;
                        continue;
                    }
                    if (dma.HasExternalPins)
                    {
                        // Spec §3.8: the devices must unpin the whole mapping first; the same mapping still pinned
                        // after the first notification and ten retries is the kernel's BUG().
                        if (ReferenceEquals(dmaLast, dma))
                        {
                            if (++retries > UnmapNotifier.RetryLimit)
                            {
                                ret = _notifier.RecordRetryBugLocked(dma, retries);
                                break;
                            }
                        }
                        else
                        {
                            dmaLast = dma;
                            retries = 0;
                        }
                        _notifier.NotifyLocked(dma);
                        again = true;
                        break;
                    }
                    if (getBitmap)
                    {
                        ret = _dirty.UpdateUserBitmapLocked(memory, bitmap.Data, dma, new Iova(range.Start), pgsize);
                        if (ret != Errno.None)
                        {
                            break;
                        }
                    }
                    unmapped += dma.Size;
                    RemoveDmaLocked(dma);
                }
            }
            if (Trace.Enabled)
            {
                Emit(invalidateVaddr ? "unmap_dma_vaddr" : "unmap_dma", caller, TraceLog.F("iova", iova), TraceLog.F("size", size),
                    TraceLog.F("flags", (int)flags), TraceLog.F("unmapped", unmapped), TraceLog.F("errno", ret.ToString()));
            }
            return ret;
        }
    }
}
