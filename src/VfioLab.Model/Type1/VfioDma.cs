using VfioLab.Addressing;
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
/// Protected by the container's lock (<see cref="Type1Context.Lock"/>). Never change while the mapping is linked:
/// <see cref="Range"/>, <see cref="Prot"/> (<see cref="Renew"/> remakes a removed, bare one for another MAP). One object per mapping, never per page: pins and translations live in the
/// host's and the IOMMU's run maps.
/// </remarks>
internal sealed class VfioDma
{
    // What only mediated devices (external pins) and dirty tracking use, made on first use: the object every mapping
    // carries stays at the fields of a plain MAP and its tree links (120 bytes instead of 144; issue 16: it is the one allocation of the
    // 4 KiB pair, and memory per live mapping).
    private Extras? _extras;

    // The DMA tree's links (rb_node): the mapping is its own node in its container's red-black tree (DmaTree), so
    // linking allocates nothing. Written only by DmaTree under the container's lock; all null and black while unlinked.
    internal VfioDma? TreeLeft;
    internal VfioDma? TreeRight;
    internal VfioDma? TreeParent;
    internal bool TreeRed;

    /// <summary>A mapping of <paramref name="range"/> (which MAP checked: aligned, inside the windows, not wrapping)
    /// from <paramref name="vaddr"/>, with nothing pinned yet.</summary>
    public VfioDma(ByteRange range, HostVirtAddr vaddr, IommuProt prot, Process task, AddressSpace mm, bool lockCap, int pageShift) =>
        Assign(range, vaddr, prot, task, mm, lockCap, pageShift);

    /// <summary>A removed mapping made new for another MAP, as the constructor makes it (<see cref="DmaMapUnmap"/> keeps
    /// a few removed ones, as the kernel's slab keeps freed struct vfio_dma; only ones nothing else refers to any more:
    /// unlinked, with no external pins, bitmap or device hold, see <c>DmaMapUnmap.KeepSpareLocked</c>).</summary>
    public VfioDma Renew(ByteRange range, HostVirtAddr vaddr, IommuProt prot, Process task, AddressSpace mm, bool lockCap, int pageShift)
    {
        System.Diagnostics.Debug.Assert(_extras is null && TreeParent is null && TreeLeft is null && TreeRight is null, "a spare mapping is bare and unlinked");
        Assign(range, vaddr, prot, task, mm, lockCap, pageShift);
        Size = 0;
        IommuMapped = false;
        VaddrInvalid = false;
        LockedVm = 0;
        TreeRed = false;
        return this;
    }

    // What MAP gives a mapping, new or renewed.
    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(Task), nameof(Mm))]
    private void Assign(ByteRange range, HostVirtAddr vaddr, IommuProt prot, Process task, AddressSpace mm, bool lockCap, int pageShift)
    {
        PageShift = pageShift;
        Range = range;
        Vaddr = vaddr;
        Prot = prot;
        Task = task;
        Mm = mm;
        LockCap = lockCap;
    }

    /// <summary>The IOVA range the mapping occupies in the tree (from the size MAP asked for; may end at 2^64-1).</summary>
    public ByteRange Range { get; private set; }

    /// <summary>First IOVA.</summary>
    public Iova Iova => new(Range.Start);

    /// <summary>The size MAP asked for: the range the mapping occupies in the tree.</summary>
    public ulong RequestedSize => Range.Size;

    /// <summary>Bytes pinned and mapped so far (<c>dma-&gt;size</c>; grows chunk by chunk during MAP,
    /// equals <see cref="RequestedSize"/> once MAP returned).</summary>
    public ulong Size { get; set; }

    /// <summary>Last IOVA of the mapping (inclusive; may be 2^64-1).</summary>
    public ulong Last => Range.Last;

    /// <summary>The IOVA range pinned and mapped so far (<c>[iova, iova + size - 1]</c>); only while
    /// <see cref="Size"/> is not 0.</summary>
    public ByteRange MappedRange => ByteRange.FromStartSize(Range.Start, Size);

    /// <summary><paramref name="size"/> bytes of the mapping from byte <paramref name="offset"/> (inside it).</summary>
    public ByteRange RangeAt(ulong offset, ulong size)
    {
        System.Diagnostics.Debug.Assert(size != 0 && offset < RequestedSize && size <= RequestedSize - offset, "outside the mapping");
        return new ByteRange(Range.Start + offset, Range.Start + offset + (size - 1));
    }

    /// <summary>IOVA of byte <paramref name="offset"/> of the mapping (inside it).</summary>
    public Iova IovaAt(ulong offset) => Iova.Plus(offset);

    /// <summary>Owner virtual address of byte <paramref name="offset"/> of the mapping (the caller checked at MAP
    /// that <c>vaddr + size - 1</c> does not wrap).</summary>
    public HostVirtAddr VaddrAt(ulong offset) => Vaddr.Plus(offset);

    /// <summary>Owner virtual address of the first byte (<c>vaddr</c>).</summary>
    public HostVirtAddr Vaddr { get; set; }

    /// <summary>IOMMU_READ / IOMMU_WRITE from the device's point of view.</summary>
    public IommuProt Prot { get; private set; }

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
    public ulong[]? Bitmap
    {
        get => _extras?.Bitmap;
        set
        {
            if (value is not null || _extras is not null)
            {
                MoreState.Bitmap = value;
            }
        }
    }

    /// <summary>The page size <see cref="Bitmap"/> was sized with.</summary>
    public ulong BitmapPageSize
    {
        get => _extras?.BitmapPageSize ?? 0;
        set
        {
            if (value != 0 || _extras is not null)
            {
                MoreState.BitmapPageSize = value;
            }
        }
    }

    /// <summary>log2 of the host PAGE_SIZE: external pins are per page.</summary>
    public int PageShift { get; private set; }

    /// <summary>Pages with an external pin (the size of <c>pfn_list</c>).</summary>
    public ulong VpfnCount => _extras?.VpfnCount ?? 0;

    private Extras MoreState => _extras ??= new Extras();

    /// <summary>Whether the mapping never had external pins or a dirty bitmap (the side state made on first use).</summary>
    public bool IsBare => _extras is null;

    // External pins keyed by IOVA page number (iova >> PageShift), created on the first one.
    private RunMap<VpfnValue>? Vpfns => _extras?.Vpfns;

    /// <summary>Whether any external pin exists.</summary>
    public bool HasExternalPins => VpfnCount > 0;

    /// <summary>The external pin of the page at <paramref name="iova"/> (<c>vfio_find_vpfn</c>).</summary>
    public bool TryFindVpfn(Iova iova, out VfioPfn vpfn)
    {
        ulong page = iova.Value >> PageShift;
        if (Vpfns is { } vpfns && vpfns.TryGetValue(page, out VpfnValue v))
        {
            vpfn = new VfioPfn(new Iova(page << PageShift), v.Pfn, v.RefCount);
            return true;
        }
        vpfn = default;
        return false;
    }

    /// <summary>External pins with a page IOVA in <paramref name="range"/> (<c>vpfn_pages</c>), counted run by run.</summary>
    public ulong CountVpfns(ByteRange range)
    {
        if (VpfnCount == 0)
        {
            return 0;
        }
        ulong first = range.Start;
        ulong last = range.Last;
        // Pages whose own IOVA lies in [first, last].
        ulong firstPage = (first >> PageShift) + ((first & ((1UL << PageShift) - 1)) != 0 ? 1UL : 0UL);
        ulong lastPage = last >> PageShift;
        if (firstPage > lastPage)
        {
            return 0;
        }
        ulong n = 0;
        foreach (Run<VpfnValue> r in Vpfns!.Overlapping(firstPage, lastPage))
        {
            n += r.Last - r.Start + 1;
        }
        return n;
    }

    /// <summary>Adds or replaces the external pin of one page.</summary>
    public void SetVpfn(VfioPfn vpfn)
    {
        ulong page = vpfn.Iova.Value >> PageShift;
        Extras extras = MoreState;
        extras.Vpfns ??= new RunMap<VpfnValue>();
        if (!extras.Vpfns.TryGetValue(page, out _))
        {
            extras.VpfnCount++;
        }
        extras.Vpfns.Set(page, page, new VpfnValue(vpfn.Pfn, vpfn.RefCount));
    }

    /// <summary>Removes the external pin of one page.</summary>
    public void RemoveVpfn(Iova iova)
    {
        ulong page = iova.Value >> PageShift;
        if (_extras is { Vpfns: { } vpfns } extras && vpfns.TryGetValue(page, out _))
        {
            vpfns.Remove(page, page);
            extras.VpfnCount--;
        }
    }

    /// <summary>Every external pin as runs, in IOVA order (for re-accounting, dirty bitmaps, snapshots).</summary>
    public List<VpfnRun> VpfnRuns()
    {
        var runs = new List<VpfnRun>();
        if (Vpfns is { } vpfns)
        {
            foreach (Run<VpfnValue> r in vpfns.All())
            {
                runs.Add(new VpfnRun(r.Start << PageShift, r.Last - r.Start + 1, r.Value.Pfn, r.Value.RefCount));
            }
        }
        return runs;
    }

    /// <summary>Sets the dirty bits of the pages overlapping <paramref name="range"/> (IOVAs inside the mapping).</summary>
    public void MarkDirty(ByteRange range)
    {
        if (Bitmap is null || BitmapPageSize == 0)
        {
            return;
        }
        int shift = System.Numerics.BitOperations.TrailingZeroCount(BitmapPageSize);
        ulong a = (range.Start - Range.Start) >> shift;
        ulong b = (range.Last - Range.Start) >> shift;
        for (ulong bit = a; bit <= b; bit++)
        {
            Bitmap[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    /// <summary>External pins whose page is clear in the dirty bitmap (each must be set while tracking: a page a
    /// device pins is dirty until it is reported), for the snapshot; 0 without a bitmap. Cost follows the external
    /// pins.</summary>
    public int CountVpfnsNotDirty()
    {
        if (Bitmap is null || BitmapPageSize == 0)
        {
            return 0;
        }
        int shift = System.Numerics.BitOperations.TrailingZeroCount(BitmapPageSize);
        int n = 0;
        ulong first = Range.Start;
        foreach (VpfnRun run in VpfnRuns())
        {
            // Each bitmap bit covers one or more pages: count the run's pages under clear bits, bit by bit.
            ulong runLast = run.Iova + ((run.Pages - 1) << PageShift);
            for (ulong bit = (run.Iova - first) >> shift; bit <= (runLast - first) >> shift; bit++)
            {
                if (bit / 64 < (ulong)Bitmap.LongLength && (Bitmap[bit / 64] & (1UL << (int)(bit % 64))) != 0)
                {
                    continue;
                }
                ulong from = Math.Max(run.Iova, first + (bit << shift));
                ulong to = Math.Min(runLast, first + (bit << shift) + (BitmapPageSize - 1));
                n += (int)(((to - from) >> PageShift) + 1);
            }
        }
        return n;
    }

    /// <summary>Test hook: clears the dirty bit of the page at <paramref name="iova"/> (breaks vpfn-consistent when
    /// the page is externally pinned while tracking).</summary>
    public void ClearDirtyBitForTest(Iova iova)
    {
        int shift = System.Numerics.BitOperations.TrailingZeroCount(BitmapPageSize);
        ulong bit = iova.Minus(Iova) >> shift;
        Bitmap![bit / 64] &= ~(1UL << (int)(bit % 64));
    }

    /// <inheritdoc />
    public override string ToString() => $"{Range} vaddr {Vaddr} {Prot}";

    // The state of external pins and dirty tracking (see _extras).
    private sealed class Extras
    {
        public RunMap<VpfnValue>? Vpfns;
        public ulong VpfnCount;
        public ulong[]? Bitmap;
        public ulong BitmapPageSize;
    }
}
