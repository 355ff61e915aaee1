using VfioLab.Abi;

namespace VfioLab.Fuzzing;

// The VADDR update of the reference (spec type1.md §1.5 step 7, §1.6 step 10, §3.12, §3.13; v6.18
// vfio_dma_do_unmap, vfio_dma_do_map and vfio_change_dma_owner): invalidating user addresses, giving them
// back, and what is refused while any is invalid.
internal sealed partial class Type1Reference
{
    /// <summary><c>vaddr_invalid_count</c>: the mappings whose user address is invalidated.</summary>
    public int VaddrInvalidCount => Mappings.Values.Count(m => m.VaddrInvalid);

    /// <summary>CHECK_EXTENSION(VFIO_UPDATE_VADDR): refused (0) while an emulated group is attached.</summary>
    public long UpdateVaddrExtension => MdevAttached ? 0 : 1;

    /// <summary>UNMAP_DMA with VADDR (and ALL when <paramref name="all"/>): EBUSY while the mdev's emulated group is
    /// attached, then the checks of a plain unmap (alignment, ALL with a range, size, EOVERFLOW, v2 bisection);
    /// then each mapping of the range in ascending order (v1: stopping at one that starts before
    /// <paramref name="iova"/>) is marked invalid; one already invalid undoes this call's marks and answers
    /// EINVAL. Nothing is unpinned, unmapped or un-charged. Returns the result and the size written back.</summary>
    public (long Ret, ulong Size) InvalidateVaddr(ulong iova, ulong size, bool all)
    {
        if (MdevAttached)
        {
            return (Errno.EBUSY.AsReturn(), 0);
        }
        ulong pg = PageSize;
        if (iova % pg != 0)
        {
            return (Errno.EINVAL.AsReturn(), 0);
        }
        ulong last = ulong.MaxValue;
        if (all)
        {
            if (iova != 0 || size != 0)
            {
                return (Errno.EINVAL.AsReturn(), 0);
            }
        }
        else
        {
            if (size == 0 || size % pg != 0)
            {
                return (Errno.EINVAL.AsReturn(), 0);
            }
            if (iova + (size - 1) < iova)
            {
                return (Errno.EOVERFLOW.AsReturn(), 0);
            }
            last = iova + (size - 1);
            if (v2 && Bisects(iova, last))
            {
                return (Errno.EINVAL.AsReturn(), 0);
            }
        }
        var marked = new List<Mapping>();
        ulong total = 0;
        foreach (Mapping m in Mappings.Values)
        {
            if (m.Last < iova || m.Iova > last)
            {
                continue;
            }
            if (!v2 && m.Iova < iova)
            {
                break;
            }
            if (m.VaddrInvalid)
            {
                foreach (Mapping undo in marked)
                {
                    undo.VaddrInvalid = false;
                }
                return (Errno.EINVAL.AsReturn(), 0);
            }
            m.VaddrInvalid = true;
            marked.Add(m);
            total += m.Size;
        }
        return (0, total);
    }

    /// <summary>MAP_DMA with VADDR and no permission bits by <paramref name="pid"/>: EINVAL for size 0, EOVERFLOW for a
    /// wrapping range, EINVAL when misaligned; then ENOENT when no mapping overlaps the range, EINVAL unless one
    /// is invalid with exactly this iova and size; then, when <paramref name="pid"/> is not the owner, the
    /// mapping's charge moves to it (ENOMEM past its RLIMIT_MEMLOCK, never for nothing charged: the mapping stays invalid; the old owner is
    /// un-charged only while alive). The new address is taken on trust: nothing is pinned or translated.</summary>
    public long UpdateVaddr(int pid, ulong iova, ulong vaddr, ulong size)
    {
        Errno bad = CheckRange(iova, vaddr, size);
        if (bad != Errno.None)
        {
            return bad.AsReturn();
        }
        ulong last = iova + (size - 1);
        Mapping? found = null;
        foreach (Mapping m in Mappings.Values)
        {
            if (m.Iova <= last && iova <= m.Last)
            {
                found = m;
                break;
            }
        }
        if (found is null)
        {
            return Errno.ENOENT.AsReturn();
        }
        if (!found.VaddrInvalid || found.Iova != iova || found.Size != size)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (found.Owner != pid)
        {
            long pages = found.LockedVm;
            if (pages > 0 && LockedVm.GetValueOrDefault(pid) + pages > memlockPages)
            {
                return Errno.ENOMEM.AsReturn();
            }
            LockedVm[pid] = LockedVm.GetValueOrDefault(pid) + pages;
            if (alive(found.Owner))
            {
                LockedVm[found.Owner] = LockedVm.GetValueOrDefault(found.Owner) - pages;
            }
            found.Owner = pid;
        }
        found.Vaddr = vaddr;
        found.VaddrInvalid = false;
        return 0;
    }
}
