using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Type1;

/// <summary>
/// The DMA tree of one type1 container (<c>iommu-&gt;dma_list</c>, the rb-tree of struct vfio_dma keyed by IOVA)
/// and the counters that follow it: the mapping-slot budget (<c>dma_avail</c> out of <c>dma_entry_limit</c>),
/// the number of mappings and <c>vaddr_invalid_count</c>. An index only: <see cref="DmaMapUnmap"/> makes, pins and
/// removes the mappings.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects every field; every
/// <c>*Locked</c> member asserts it. Never changes: <see cref="DmaEntryLimit"/>. The tree is a
/// <c>RunMap&lt;DmaRef&gt;</c>: one run per mapping, never merged with a neighbour, so cost follows mappings.
/// </remarks>
internal sealed class DmaTree
{
    private readonly Type1Context _ctx;
    // Nodes of 32: a mapping inserted or removed among 65,535 shifts half as much as with 64 (RunMapBenchmarks).
    private readonly RunMap<DmaRef> _dmas = new(32);
    private uint _dmaAvail;
    private int _count;
    private int _vaddrInvalidCount;

    public DmaTree(Type1Context ctx)
    {
        _ctx = ctx;
        DmaEntryLimit = ctx.Behavior.DmaEntryLimit;
        _dmaAvail = DmaEntryLimit;
    }

    /// <summary><c>dma_entry_limit</c> as read when the container opened.</summary>
    public uint DmaEntryLimit { get; }

    /// <summary><c>dma_avail</c>: mapping slots left.</summary>
    public uint DmaAvailLocked
    {
        get
        {
            _ctx.AssertLocked();
            return _dmaAvail;
        }
    }

    /// <summary>The mappings in the tree (the backend's own count, checked against the tree by the checker).</summary>
    public int CountLocked
    {
        get
        {
            _ctx.AssertLocked();
            return _count;
        }
    }

    /// <summary><c>vaddr_invalid_count</c>: mappings whose vaddr UNMAP(VADDR) invalidated.</summary>
    public int VaddrInvalidCountLocked
    {
        get
        {
            _ctx.AssertLocked();
            return _vaddrInvalidCount;
        }
    }

    /// <summary>The mapping containing <paramref name="iova"/>, or null (<c>vfio_find_dma</c> of one byte).</summary>
    public VfioDma? FindLocked(Iova iova)
    {
        _ctx.AssertLocked();
        return _dmas.TryGetValue(iova.Value, out DmaRef d) ? d.Dma : null;
    }

    /// <summary>The lowest mapping overlapping <paramref name="range"/> (<c>vfio_find_dma</c>).</summary>
    public bool TryFindFirstLocked(ByteRange range, out VfioDma? dma)
    {
        _ctx.AssertLocked();
        if (_dmas.TryGetAtOrAfter(range.Start, out Run<DmaRef> hit) && hit.Start <= range.Last)
        {
            dma = hit.Value.Dma;
            return true;
        }
        dma = null;
        return false;
    }

    /// <summary>Whether any mapping overlaps <paramref name="range"/>.</summary>
    public bool OverlapsLocked(ByteRange range)
    {
        _ctx.AssertLocked();
        return _dmas.Overlaps(range.Start, range.Last);
    }

    /// <summary>The mappings overlapping <paramref name="range"/>, ascending, into <paramref name="into"/> (cleared
    /// first): a copy, since callers remove while walking, into a list the caller reuses.</summary>
    public void OverlappingLocked(ByteRange range, List<VfioDma> into)
    {
        _ctx.AssertLocked();
        into.Clear();
        foreach (Run<DmaRef> r in _dmas.Overlapping(range.Start, range.Last))
        {
            into.Add(r.Value.Dma);
        }
    }

    /// <summary>The mappings overlapping <paramref name="range"/>, ascending (a new list).</summary>
    public List<VfioDma> OverlappingLocked(ByteRange range)
    {
        var list = new List<VfioDma>();
        OverlappingLocked(range, list);
        return list;
    }

    /// <summary>Every mapping, ascending (a new list).</summary>
    public List<VfioDma> AllLocked() => OverlappingLocked(new ByteRange(0, ulong.MaxValue));

    /// <summary>Every run of the tree as it is (for the snapshot, which reports a mapping's runs so the checker sees
    /// a tree that names a mapping outside its extent).</summary>
    public RunMap<DmaRef>.RangeEnumerable RunsLocked()
    {
        _ctx.AssertLocked();
        return _dmas.All();
    }

    /// <summary>The tree's runs overlapping <paramref name="span"/>, clipped to it (the invariant checker's narrow check).</summary>
    public RunMap<DmaRef>.RangeEnumerable RunsLocked(ByteRange span)
    {
        _ctx.AssertLocked();
        return _dmas.Overlapping(span.Start, span.Last);
    }

    /// <summary>Every mapping found in the tree, by first IOVA, as the snapshot copies it, each with the tree's runs that
    /// name it (exactly its extent when the tree is sound). Cost follows mappings and external pins.</summary>
    public List<VfioDmaSnapshot> SnapshotMappingsLocked() => SnapshotMappingsLocked(new ByteRange(0, ulong.MaxValue));

    /// <summary><see cref="SnapshotMappingsLocked()"/> of the mappings the tree holds in <paramref name="span"/> only
    /// (the incremental check's window).</summary>
    public List<VfioDmaSnapshot> SnapshotMappingsLocked(ByteRange span)
    {
        _ctx.AssertLocked();
        var order = new List<VfioDma>();
        var treeRuns = new Dictionary<VfioDma, List<ByteRange>>();
        foreach (Run<DmaRef> r in _dmas.Overlapping(span.Start, span.Last))
        {
            VfioDma dma = r.Value.Dma;
            if (!treeRuns.TryGetValue(dma, out List<ByteRange>? runs))
            {
                runs = [];
                treeRuns.Add(dma, runs);
                order.Add(dma);
            }
            runs.Add(new ByteRange(r.Start, r.Last));
        }
        order.Sort((a, b) => a.Range.Start.CompareTo(b.Range.Start));
        var mappings = new List<VfioDmaSnapshot>(order.Count);
        foreach (VfioDma d in order)
        {
            mappings.Add(new VfioDmaSnapshot(d.Range.Start, d.Last, d.RequestedSize, d.Size, d.Vaddr.Value, d.Prot, d.IommuMapped, d.LockCap,
                d.VaddrInvalid, d.Task, d.Mm, d.LockedVm, d.Bitmap?.LongLength ?? -1, d.BitmapPageSize, d.VpfnRuns(), treeRuns[d])
            {
                VpfnsNotDirty = d.CountVpfnsNotDirty(),
            });
        }
        return mappings;
    }

    /// <summary>The incremental check's window around <c>[start, last]</c>: from the first IOVA of the tree run that
    /// holds or precedes the byte before <paramref name="start"/> (0 when there is none) to the last IOVA of the run
    /// that holds or follows the byte after <paramref name="last"/> (the top when there is none), so the mappings on
    /// either side, and the gaps up to them, are seen whole.</summary>
    public ByteRange CheckWindowLocked(ulong start, ulong last)
    {
        _ctx.AssertLocked();
        ulong from = start > 0 && _dmas.TryGetAtOrBefore(start - 1, out Run<DmaRef> before) ? Math.Min(before.Start, start) : 0;
        ulong to = last < ulong.MaxValue && _dmas.TryGetAtOrAfter(last + 1, out Run<DmaRef> after) ? Math.Max(after.Last, last) : ulong.MaxValue;
        return new ByteRange(from, to);
    }

    /// <summary>The incremental check's gap window around <c>[start, last]</c> (issue 16): the mappings overlapping it
    /// whole and the gaps on either side, up to but not including the nearest mappings that do not overlap it: from the
    /// byte after the last of those ending before it (0 when there is none) to the byte before the first starting
    /// after it (the top when there is none). Two to four descents.</summary>
    public ByteRange CheckGapWindowLocked(ulong start, ulong last)
    {
        _ctx.AssertLocked();
        ulong from = 0;
        ulong k = start;
        while (k > 0 && _dmas.TryGetAtOrBefore(k - 1, out Run<DmaRef> b))
        {
            if (b.Last >= start && b.Start < k)
            {
                k = b.Start; // overlaps the range: part of the window
                continue;
            }
            from = b.Last + 1;
            break;
        }
        ulong to = ulong.MaxValue;
        k = last;
        while (k < ulong.MaxValue && _dmas.TryGetAtOrAfter(k + 1, out Run<DmaRef> a))
        {
            if (a.Start <= last && a.Last > k)
            {
                k = a.Last;
                continue;
            }
            to = a.Start - 1;
            break;
        }
        return new ByteRange(from, to);
    }

    /// <summary>The v2 "no bisection" rule of UNMAP and GET_DIRTY_BITMAP: a mapping containing the first byte of
    /// <paramref name="range"/> must start there and one containing its last byte must end there.</summary>
    public bool NoBisectionLocked(ByteRange range)
    {
        _ctx.AssertLocked();
        VfioDma? a = FindLocked(new Iova(range.Start));
        if (a is not null && a.Range.Start != range.Start)
        {
            return false;
        }
        VfioDma? b = FindLocked(new Iova(range.Last));
        return b is null || b.Last == range.Last;
    }

    /// <summary><see cref="NoBisectionLocked"/> read off <paramref name="overlapping"/>, the mappings overlapping
    /// <paramref name="range"/> in ascending order (<see cref="OverlappingLocked(ByteRange, List{VfioDma})"/>): the
    /// first of them holds the range's first byte exactly when it starts before it, the last its last byte exactly when
    /// it ends after it. UNMAP collects them anyway, so this saves it two tree lookups (issue 16's 4 KiB pair).</summary>
    public static bool NoBisection(ByteRange range, List<VfioDma> overlapping) =>
        overlapping.Count == 0 || (overlapping[0].Range.Start >= range.Start && overlapping[^1].Last <= range.Last);

    /// <summary>Why <paramref name="range"/> breaks <see cref="NoBisectionLocked"/>: EINVAL, recorded for
    /// <paramref name="check"/> with the mapping it would cut.</summary>
    public Errno RefuseBisectionLocked(ByteRange range, string check)
    {
        _ctx.AssertLocked();
        VfioDma? a = FindLocked(new Iova(range.Start));
        VfioDma cut = a is not null && a.Range.Start != range.Start ? a : FindLocked(new Iova(range.Last))!;
        return Refusals.Refuse(Errno.EINVAL, check, "v2 does not split mappings: [0x{0:x}, 0x{1:x}] cuts the mapping [0x{2:x}, 0x{3:x}]",
            range.Start, range.Last, cut.Range.Start, cut.Range.Last);
    }

    /// <summary>The first half of <c>vfio_link_dma</c> for MAP: links a new mapping if no mapping overlaps its range, in
    /// one descent, and returns false otherwise (<c>vfio_find_dma</c>'s EEXIST). The slot is taken by
    /// <see cref="CountLinkedLocked"/> once MAP's other checks pass; until then <see cref="UnlinkLocked"/> undoes it
    /// and nothing else may look at the tree.</summary>
    public bool TryLinkLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        return _dmas.TryInsert(dma.Range.Start, dma.Range.Last, new DmaRef(dma));
    }

    /// <summary>Undoes <see cref="TryLinkLocked"/> for a MAP refused after it (no slot, outside the windows, allocation).</summary>
    public void UnlinkLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        _dmas.Remove(dma.Range.Start, dma.Range.Last);
    }

    /// <summary>The second half of <c>vfio_link_dma</c>: the linked mapping takes one slot (<c>dma_avail--</c>).</summary>
    public void CountLinkedLocked()
    {
        _ctx.AssertLocked();
        System.Diagnostics.Debug.Assert(_dmaAvail > 0, "MAP checks for a slot first");
        _dmaAvail--;
        _count++;
    }

    /// <summary>Unlinks a mapping and returns its slot (<c>vfio_unlink_dma</c>, <c>dma_avail++</c>); an invalidated
    /// vaddr stops counting.</summary>
    public void RemoveLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        _dmas.Remove(dma.Range.Start, dma.Range.Last);
        _count--;
        if (dma.VaddrInvalid)
        {
            _vaddrInvalidCount--;
        }
        _dmaAvail++;
    }

    /// <summary>UNMAP(VADDR): the mapping's vaddr becomes invalid until a MAP(VADDR) gives it a new one.</summary>
    public void InvalidateVaddrLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        dma.VaddrInvalid = true;
        _vaddrInvalidCount++;
    }

    /// <summary>MAP(VADDR), or the unwind of an UNMAP(VADDR) that met an invalid vaddr: the vaddr is valid again.</summary>
    public void RevalidateVaddrLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        dma.VaddrInvalid = false;
        _vaddrInvalidCount--;
    }

    /// <summary>Test hook (lock held): <c>dma_avail</c> moves by <paramref name="delta"/> (breaks dma-avail-conserved).</summary>
    public void AdjustDmaAvailForTestLocked(int delta)
    {
        _ctx.AssertLocked();
        _dmaAvail = (uint)((long)_dmaAvail + delta);
    }

    /// <summary>Test hook (lock held): the tree hands <paramref name="range"/> to <paramref name="owner"/>, whatever
    /// held it before (breaks mappings-disjoint).</summary>
    public void ClaimRangeForTestLocked(ByteRange range, VfioDma owner)
    {
        _ctx.AssertLocked();
        _dmas.Set(range.Start, range.Last, new DmaRef(owner));
    }

    /// <summary>Test hook (lock held): overwrites <c>vaddr_invalid_count</c> (breaks vaddr-invalid-count).</summary>
    public void SetVaddrInvalidCountForTestLocked(int value)
    {
        _ctx.AssertLocked();
        _vaddrInvalidCount = value;
    }
}
