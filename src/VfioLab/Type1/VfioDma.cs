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
    private SortedDictionary<ulong, VfioPfn>? _pfnList;

    public VfioDma(ulong iova, ulong requestedSize, ulong vaddr, IommuProt prot, Process task, AddressSpace mm, bool lockCap)
    {
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

    /// <summary>External pins (<c>pfn_list</c>), by page IOVA.</summary>
    public IReadOnlyDictionary<ulong, VfioPfn> PfnList => (IReadOnlyDictionary<ulong, VfioPfn>?)_pfnList ?? EmptyPfns;

    /// <summary>Whether any external pin exists.</summary>
    public bool HasExternalPins => _pfnList is { Count: > 0 };

    private static readonly SortedDictionary<ulong, VfioPfn> EmptyPfns = [];

    /// <summary>The external pin of the page at <paramref name="iova"/> (<c>vfio_find_vpfn</c>).</summary>
    public bool TryFindVpfn(ulong iova, out VfioPfn vpfn)
    {
        vpfn = default;
        return _pfnList is not null && _pfnList.TryGetValue(iova, out vpfn);
    }

    /// <summary>External pins with a page IOVA in <c>[first, last]</c> (<c>vpfn_pages</c>).</summary>
    public ulong CountVpfns(ulong first, ulong last)
    {
        if (_pfnList is null || _pfnList.Count == 0)
        {
            return 0;
        }
        ulong n = 0;
        foreach (ulong key in _pfnList.Keys)
        {
            if (key >= first && key <= last)
            {
                n++;
            }
        }
        return n;
    }

    /// <summary>Adds or replaces the external pin of one page.</summary>
    public void SetVpfn(VfioPfn vpfn) => (_pfnList ??= [])[vpfn.Iova] = vpfn;

    /// <summary>Removes the external pin of one page.</summary>
    public void RemoveVpfn(ulong iova) => _pfnList?.Remove(iova);

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
