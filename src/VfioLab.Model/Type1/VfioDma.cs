using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// One user DMA mapping of a type1 container (struct vfio_dma): an IOVA range, the owner's virtual
/// address it was created from, the device's permissions, who is charged for its pinned pages, and,
/// while dirty tracking runs, its dirty bitmap.
/// </summary>
/// <remarks>
/// Protected by the container's lock (<see cref="VfioIommu"/>). Never change after MAP: <see cref="Iova"/>,
/// <see cref="Prot"/>. One object per mapping, never per page: pins and translations live in the
/// host's and the IOMMU's run maps.
/// </remarks>
internal sealed class VfioDma
{
    // External pins keyed by IOVA page number (iova >> PageShift), created on the first one.
    private RunMap<VpfnValue>? _vpfns;

    public VfioDma(ulong iova, ulong requestedSize, ulong vaddr, IommuProt prot, Process task, AddressSpace mm, bool lockCap, int pageShift)
    {
        PageShift = pageShift;
        Iova = iova;
        RequestedSize = requestedSize;
        Vaddr = vaddr;
        Prot = prot;
        Task = task;
        Mm = mm;
        LockCap = lockCap;
    }

    /// <summary>First IOVA.</summary>
    public ulong Iova { get; }

    /// <summary>The size MAP asked for: the range the mapping occupies in the tree.</summary>
    public ulong RequestedSize { get; }

    /// <summary>Bytes pinned and mapped so far (<c>dma-&gt;size</c>; grows chunk by chunk during MAP,
    /// equals <see cref="RequestedSize"/> once MAP returned).</summary>
    public ulong Size { get; set; }

    /// <summary>Last IOVA of the mapping (inclusive; may be 2^64-1).</summary>
    public ulong Last => Iova + (RequestedSize - 1);

    /// <summary>Owner virtual address of the first byte (<c>vaddr</c>).</summary>
    public ulong Vaddr { get; set; }

    /// <summary>IOMMU_READ / IOMMU_WRITE from the device's point of view.</summary>
    public IommuProt Prot { get; }

    /// <summary>Whether every page is pinned and present in every domain (<c>iommu_mapped</c>).</summary>
    public bool IommuMapped { get; set; }

    /// <summary>CAP_IPC_LOCK of the mapper, sampled at MAP or VADDR update (<c>lock_cap</c>).</summary>
    public bool LockCap { get; set; }

    /// <summary>Whether UNMAP(VADDR) invalidated the vaddr (<c>vaddr_invalid</c>).</summary>
    public bool VaddrInvalid { get; set; }

    /// <summary>The owner thread-group leader, whose RLIMIT_MEMLOCK limits the charge (<c>task</c>).</summary>
    public Process Task { get; set; }

    /// <summary>The owner address space charged for the pins (<c>mm</c>, v6.3+).</summary>
    public AddressSpace Mm { get; set; }

    /// <summary>Pages this mapping has charged to <see cref="Mm"/> (<c>locked_vm</c>, v6.3+).</summary>
    public long LockedVm { get; set; }

    /// <summary>The dirty bitmap while tracking: one bit per minimum IOMMU page, plus a spare word.</summary>
    public ulong[]? Bitmap { get; set; }

    /// <summary>The page size <see cref="Bitmap"/> was sized with.</summary>
    public ulong BitmapPageSize { get; set; }

    /// <summary>log2 of the host PAGE_SIZE: external pins are per page.</summary>
    public int PageShift { get; }

    /// <summary>Pages with an external pin (the size of <c>pfn_list</c>).</summary>
    public ulong VpfnCount { get; private set; }

    /// <summary>Whether any external pin exists.</summary>
    public bool HasExternalPins => VpfnCount > 0;

    /// <summary>The external pin of the page at <paramref name="iova"/> (<c>vfio_find_vpfn</c>).</summary>
    public bool TryFindVpfn(ulong iova, out VfioPfn vpfn)
    {
        if (_vpfns is not null && _vpfns.TryGetValue(iova >> PageShift, out VpfnValue v))
        {
            vpfn = new VfioPfn((iova >> PageShift) << PageShift, v.Pfn, v.RefCount);
            return true;
        }
        vpfn = default;
        return false;
    }

    /// <summary>External pins with a page IOVA in <c>[first, last]</c> (<c>vpfn_pages</c>), counted run by run.</summary>
    public ulong CountVpfns(ulong first, ulong last)
    {
        if (VpfnCount == 0 || first > last)
        {
            return 0;
        }
        // Pages whose own IOVA lies in [first, last].
        ulong firstPage = (first >> PageShift) + ((first & ((1UL << PageShift) - 1)) != 0 ? 1UL : 0UL);
        ulong lastPage = last >> PageShift;
        if (firstPage > lastPage)
        {
            return 0;
        }
        ulong n = 0;
        foreach (Run<VpfnValue> r in _vpfns!.Overlapping(firstPage, lastPage))
        {
            n += r.Last - r.Start + 1;
        }
        return n;
    }

    /// <summary>Adds or replaces the external pin of one page.</summary>
    public void SetVpfn(VfioPfn vpfn)
    {
        ulong page = vpfn.Iova >> PageShift;
        _vpfns ??= new RunMap<VpfnValue>();
        if (!_vpfns.TryGetValue(page, out _))
        {
            VpfnCount++;
        }
        _vpfns.Set(page, page, new VpfnValue(vpfn.Pfn, vpfn.RefCount));
    }

    /// <summary>Removes the external pin of one page.</summary>
    public void RemoveVpfn(ulong iova)
    {
        ulong page = iova >> PageShift;
        if (_vpfns is not null && _vpfns.TryGetValue(page, out _))
        {
            _vpfns.Remove(page, page);
            VpfnCount--;
        }
    }

    /// <summary>Every external pin as runs, in IOVA order (for re-accounting, dirty bitmaps, snapshots).</summary>
    public List<VpfnRun> VpfnRuns()
    {
        var runs = new List<VpfnRun>();
        if (_vpfns is not null)
        {
            foreach (Run<VpfnValue> r in _vpfns.All())
            {
                runs.Add(new VpfnRun(r.Start << PageShift, r.Last - r.Start + 1, r.Value.Pfn, r.Value.RefCount));
            }
        }
        return runs;
    }

    /// <summary>Sets the dirty bits of the pages overlapping <c>[first, last]</c> (IOVAs inside the mapping).</summary>
    public void MarkDirty(ulong first, ulong last)
    {
        if (Bitmap is null || BitmapPageSize == 0)
        {
            return;
        }
        int shift = System.Numerics.BitOperations.TrailingZeroCount(BitmapPageSize);
        ulong a = (first - Iova) >> shift;
        ulong b = (last - Iova) >> shift;
        for (ulong bit = a; bit <= b; bit++)
        {
            Bitmap[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"[0x{Iova:x}, 0x{Last:x}] vaddr 0x{Vaddr:x} {Prot}";
}
