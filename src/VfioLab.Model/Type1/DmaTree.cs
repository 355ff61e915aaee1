using System.Runtime.CompilerServices;
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
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects every field, and the tree links of
/// every linked <see cref="VfioDma"/>; every <c>*Locked</c> member asserts it. Never changes: <see cref="DmaEntryLimit"/>.
/// The tree is intrusive, as the kernel's: a red-black tree whose nodes are the mappings themselves
/// (<see cref="VfioDma.TreeLeft"/>, <see cref="VfioDma.TreeRight"/>, <see cref="VfioDma.TreeParent"/>,
/// <see cref="VfioDma.TreeRed"/>), ordered by first IOVA; mappings are disjoint, so a descent comparing a range with
/// each node's extent finds any mapping it overlaps. Until issue 16's 4 KiB pair it was a <c>RunMap&lt;DmaRef&gt;</c>
/// B+tree, one run per mapping: a MAP and an UNMAP each shifted half a leaf of 24-byte entries holding a reference,
/// through the GC's write barrier, about 90 ns of the pair; the intrusive tree links and unlinks with a few pointer
/// writes and allocates nothing beyond the mapping. Cost follows mappings. The one test hook that breaks the tree
/// (<see cref="ClaimRangeForTestLocked"/>) moves it, for the rest of its life, to a run map of the same runs kept
/// beside it, which the readers of runs then read.
/// </remarks>
internal sealed partial class DmaTree
{
    private readonly Type1Context _ctx;
    private VfioDma? _root;
    // Only after ClaimRangeForTestLocked: the tree's runs as that hook left them (one run per mapping before it).
    private RunMap<DmaRef>? _claimed;
    private uint _dmaAvail;
    private int _count;
    private int _vaddrInvalidCount;
    // The mapping the last MAP linked, while it stays linked (Erase forgets it): a lookup of an IOVA inside it answers
    // without a descent. The UNMAP of the range just mapped, a vIOMMU guest's map and unmap of one page and issue 16's
    // 4 KiB pair, found its mapping through ~17 levels of a tree of 65,535 (FindLocked was 3.7 % of the pair's
    // profile, ~30 ns; docs/benchmarks.md, 2026-12-07 pair6). Mappings are disjoint, so the one containing an IOVA is
    // the one a descent finds.
    private VfioDma? _lastLinked;
    // The gap the last unlink left: the mappings on either side of the one it took out (null past the first or the
    // last), neighbours in IOVA order until the next link or unlink (either forgets it; rotations keep the order). A MAP
    // whose range falls inside it links without a descent: no mapping can overlap it, and of two neighbours in order
    // exactly one has a free child slot on the gap's side, where a descent would end. The MAP after an UNMAP of the
    // same range (issue 16's 4 KiB pair, a vIOMMU guest's unmap and map of a page) descended ~17 levels of a tree of
    // 65,535 (TryLinkLocked was 4.7 % of the pair's profile); the unlink pays two short in-order walks for it
    // (docs/benchmarks.md, 2026-12-07 pair6).
    private bool _gapKnown;
    private VfioDma? _gapLow;
    private VfioDma? _gapHigh;
    // Whether the last link went into the gap (_lastLinked's neighbours in IOVA order are then _gapLow and _gapHigh,
    // kept until the next link or unlink): an unlink of that mapping (the 4 KiB pair's UNMAP) has its new gap without the
    // two in-order walks, which from a leaf climb up to ~17 levels of a tree of 65,535 (docs/benchmarks.md, pair10).
    private bool _lastLinkedInGap;

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
        ulong key = iova.Value;
        if (_lastLinked is { } hot && key >= hot.Range.Start && key <= hot.Range.Last)
        {
            System.Diagnostics.Debug.Assert(ReferenceEquals(FindByDescent(key), hot), "the mapping last linked is the one a descent finds");
            return hot;
        }
        return FindByDescent(key);
    }

    private VfioDma? FindByDescent(ulong key)
    {
        VfioDma? n = _root;
        while (n is not null)
        {
            if (key < n.Range.Start)
            {
                n = n.TreeLeft;
            }
            else if (key > n.Range.Last)
            {
                n = n.TreeRight;
            }
            else
            {
                return n;
            }
        }
        return null;
    }

    /// <summary>The lowest mapping overlapping <paramref name="range"/> (<c>vfio_find_dma</c>).</summary>
    public bool TryFindFirstLocked(ByteRange range, out VfioDma? dma)
    {
        _ctx.AssertLocked();
        VfioDma? hit = FirstEndingAtOrAfter(range.Start);
        dma = hit is not null && hit.Range.Start <= range.Last ? hit : null;
        return dma is not null;
    }

    /// <summary>Whether any mapping overlaps <paramref name="range"/>.</summary>
    public bool OverlapsLocked(ByteRange range)
    {
        _ctx.AssertLocked();
        return TryFindFirstLocked(range, out _);
    }

    /// <summary>The mappings overlapping <paramref name="range"/>, ascending, into <paramref name="into"/> (cleared
    /// first): a copy, since callers remove while walking, into a list the caller reuses.</summary>
    public void OverlappingLocked(ByteRange range, List<VfioDma> into)
    {
        _ctx.AssertLocked();
        into.Clear();
        for (VfioDma? d = FirstEndingAtOrAfter(range.Start); d is not null && d.Range.Start <= range.Last; d = Next(d))
        {
            into.Add(d);
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
    public RunEnumerable RunsLocked()
    {
        _ctx.AssertLocked();
        return new RunEnumerable(this, 0, ulong.MaxValue);
    }

    /// <summary>The tree's runs overlapping <paramref name="span"/>, clipped to it (the invariant checker's narrow check).</summary>
    public RunEnumerable RunsLocked(ByteRange span)
    {
        _ctx.AssertLocked();
        return new RunEnumerable(this, span.Start, span.Last);
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
        foreach (Run<DmaRef> r in RunsLocked(span))
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
        if (_claimed is { } runs)
        {
            ulong f = start > 0 && runs.TryGetAtOrBefore(start - 1, out Run<DmaRef> b) ? Math.Min(b.Start, start) : 0;
            ulong t = last < ulong.MaxValue && runs.TryGetAtOrAfter(last + 1, out Run<DmaRef> a) ? Math.Max(a.Last, last) : ulong.MaxValue;
            return new ByteRange(f, t);
        }
        VfioDma? before = start > 0 ? LastStartingAtOrBefore(start - 1) : null;
        VfioDma? after = last < ulong.MaxValue ? FirstEndingAtOrAfter(last + 1) : null;
        ulong from = before is not null ? Math.Min(before.Range.Start, start) : 0;
        ulong to = after is not null ? Math.Max(after.Range.Last, last) : ulong.MaxValue;
        return new ByteRange(from, to);
    }

    /// <summary>The incremental check's gap window around <c>[start, last]</c> (issue 16): the mappings overlapping it
    /// whole and the gaps on either side, up to but not including the nearest mappings that do not overlap it: from the
    /// byte after the last of those ending before it (0 when there is none) to the byte before the first starting
    /// after it (the top when there is none). Two to four descents.</summary>
    public ByteRange CheckGapWindowLocked(ulong start, ulong last)
    {
        _ctx.AssertLocked();
        if (_claimed is { } runs)
        {
            return GapWindowOfRuns(runs, start, last);
        }
        // Mappings never overlap: at most one crosses each end of the range, and the nearest mapping beyond it is
        // its neighbour in the tree.
        VfioDma? before = start > 0 ? LastStartingAtOrBefore(start - 1) : null;
        if (before is not null && before.Range.Last >= start)
        {
            before = before.Range.Start > 0 ? LastStartingAtOrBefore(before.Range.Start - 1) : null;
        }
        VfioDma? after = last < ulong.MaxValue ? FirstEndingAtOrAfter(last + 1) : null;
        if (after is not null && after.Range.Start <= last)
        {
            after = Next(after);
        }
        return new ByteRange(before is null ? 0 : before.Range.Last + 1, after is null ? ulong.MaxValue : after.Range.Start - 1);
    }

    // The gap window over the runs a test hook claimed (which may overlap the mappings): runs overlapping the range
    // are taken whole, one after another, until one does not.
    private static ByteRange GapWindowOfRuns(RunMap<DmaRef> runs, ulong start, ulong last)
    {
        ulong from = 0;
        ulong k = start;
        while (k > 0 && runs.TryGetAtOrBefore(k - 1, out Run<DmaRef> b))
        {
            if (b.Last >= start && b.Start < k)
            {
                k = b.Start;
                continue;
            }
            from = b.Last + 1;
            break;
        }
        ulong to = ulong.MaxValue;
        k = last;
        while (k < ulong.MaxValue && runs.TryGetAtOrAfter(k + 1, out Run<DmaRef> a))
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
        ulong start = dma.Range.Start;
        ulong last = dma.Range.Last;
        VfioDma? parent = null;
        VfioDma? n = _root;
        bool left = false;
        bool inGap = false;
        if (_gapKnown && (_gapLow is null || _gapLow.Range.Last < start) && (_gapHigh is null || last < _gapHigh.Range.Start))
        {
            inGap = true;
            // Inside the gap: the descent would end at the low neighbour's empty right slot or the high one's empty left.
            if (_gapLow is not null && _gapLow.TreeRight is null)
            {
                parent = _gapLow;
                n = null;
            }
            else if (_gapHigh is not null && _gapHigh.TreeLeft is null)
            {
                parent = _gapHigh;
                left = true;
                n = null;
            }
            System.Diagnostics.Debug.Assert(n is null, "two neighbours in order (or an empty tree): one has a free slot between them");
            DebugAssertDescentEndsAt(start, last, parent, left);
        }
        while (n is not null)
        {
            parent = n;
            if (last < n.Range.Start)
            {
                n = n.TreeLeft;
                left = true;
            }
            else if (start > n.Range.Last)
            {
                n = n.TreeRight;
                left = false;
            }
            else
            {
                return false;
            }
        }
        // After a test claim the run map beside the tree follows it (it may overlap the claimed range: test-only).
        _claimed?.Set(start, last, new DmaRef(dma));
        dma.TreeParent = parent;
        dma.TreeLeft = null;
        dma.TreeRight = null;
        dma.TreeRed = true;
        if (parent is null)
        {
            _root = dma;
        }
        else if (left)
        {
            parent.TreeLeft = dma;
        }
        else
        {
            parent.TreeRight = dma;
        }
        InsertFixup(dma);
        _lastLinked = dma;
        _lastLinkedInGap = inGap;
        _gapKnown = false;
        return true;
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private void DebugAssertDescentEndsAt(ulong start, ulong last, VfioDma? parent, bool left)
    {
        VfioDma? at = null;
        bool side = false;
        for (VfioDma? n = _root; n is not null;)
        {
            System.Diagnostics.Debug.Assert(last < n.Range.Start || start > n.Range.Last, "no mapping overlaps the gap");
            at = n;
            side = last < n.Range.Start;
            n = side ? n.TreeLeft : n.TreeRight;
        }
        System.Diagnostics.Debug.Assert(ReferenceEquals(at, parent) && (at is null || side == left), "the gap's slot is where a descent ends");
    }

    // In-order predecessor (rb_prev).
    private static VfioDma? Previous(VfioDma n)
    {
        if (n.TreeLeft is { } l)
        {
            while (l.TreeRight is { } r)
            {
                l = r;
            }
            return l;
        }
        VfioDma? p = n.TreeParent;
        while (p is not null && ReferenceEquals(n, p.TreeLeft))
        {
            n = p;
            p = p.TreeParent;
        }
        return p;
    }

    /// <summary>Undoes <see cref="TryLinkLocked"/> for a MAP refused after it (no slot, outside the windows, allocation).</summary>
    public void UnlinkLocked(VfioDma dma)
    {
        _ctx.AssertLocked();
        Erase(dma);
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
        Erase(dma);
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
        if (_claimed is null)
        {
            var runs = new RunMap<DmaRef>(32);
            for (VfioDma? d = First(); d is not null; d = Next(d))
            {
                runs.Set(d.Range.Start, d.Range.Last, new DmaRef(d));
            }
            _claimed = runs;
        }
        _claimed.Set(range.Start, range.Last, new DmaRef(owner));
    }

    /// <summary>Test hook (lock held): overwrites <c>vaddr_invalid_count</c> (breaks vaddr-invalid-count).</summary>
    public void SetVaddrInvalidCountForTestLocked(int value)
    {
        _ctx.AssertLocked();
        _vaddrInvalidCount = value;
    }

    // The mapping with the lowest IOVA ending at or after key: the one holding key, or else the first after it.
    private VfioDma? FirstEndingAtOrAfter(ulong key)
    {
        VfioDma? best = null;
        VfioDma? n = _root;
        while (n is not null)
        {
            if (n.Range.Last >= key)
            {
                best = n;
                n = n.TreeLeft;
            }
            else
            {
                n = n.TreeRight;
            }
        }
        return best;
    }

    // The mapping with the highest IOVA starting at or before key: the one holding key, or else the last before it.
    private VfioDma? LastStartingAtOrBefore(ulong key)
    {
        VfioDma? best = null;
        VfioDma? n = _root;
        while (n is not null)
        {
            if (n.Range.Start <= key)
            {
                best = n;
                n = n.TreeRight;
            }
            else
            {
                n = n.TreeLeft;
            }
        }
        return best;
    }

    private VfioDma? First()
    {
        VfioDma? n = _root;
        while (n?.TreeLeft is { } l)
        {
            n = l;
        }
        return n;
    }

    // In-order successor (rb_next).
    private static VfioDma? Next(VfioDma n)
    {
        if (n.TreeRight is { } r)
        {
            while (r.TreeLeft is { } l)
            {
                r = l;
            }
            return r;
        }
        VfioDma? p = n.TreeParent;
        while (p is not null && ReferenceEquals(n, p.TreeRight))
        {
            n = p;
            p = p.TreeParent;
        }
        return p;
    }

    private static bool IsRed(VfioDma? n) => n is not null && n.TreeRed;

    // A child by side: the red-black repairs below are written once for a side and its mirror.
    private static VfioDma? Child(VfioDma n, bool right) => right ? n.TreeRight : n.TreeLeft;

    private static void SetChild(VfioDma n, bool right, VfioDma? child)
    {
        if (right)
        {
            n.TreeRight = child;
        }
        else
        {
            n.TreeLeft = child;
        }
    }

    // Rotates x down to the left (its right child rises) or, with left false, to the right.
    private void Rotate(VfioDma x, bool left)
    {
        VfioDma y = Child(x, left)!;
        VfioDma? inner = Child(y, !left);
        SetChild(x, left, inner);
        if (inner is not null)
        {
            inner.TreeParent = x;
        }
        Replace(x, y);
        SetChild(y, !left, x);
        x.TreeParent = y;
    }

    // Puts v where u hangs from u's parent (or the root); u's own links are the caller's.
    private void Replace(VfioDma u, VfioDma? v)
    {
        VfioDma? p = u.TreeParent;
        if (p is null)
        {
            _root = v;
        }
        else if (ReferenceEquals(u, p.TreeLeft))
        {
            p.TreeLeft = v;
        }
        else
        {
            p.TreeRight = v;
        }
        if (v is not null)
        {
            v.TreeParent = p;
        }
    }

    // Red-black insertion repair: z is a new red leaf.
    private void InsertFixup(VfioDma z)
    {
        while (z.TreeParent is { TreeRed: true } p)
        {
            VfioDma g = p.TreeParent!; // a red node is never the root
            bool pRight = ReferenceEquals(p, g.TreeRight);
            VfioDma? u = Child(g, !pRight);
            if (IsRed(u))
            {
                p.TreeRed = false;
                u!.TreeRed = false;
                g.TreeRed = true;
                z = g;
                continue;
            }
            if (ReferenceEquals(z, Child(p, !pRight)))
            {
                Rotate(p, left: !pRight);
                (z, p) = (p, z);
            }
            p.TreeRed = false;
            g.TreeRed = true;
            Rotate(g, left: pRight);
        }
        _root!.TreeRed = false;
    }

    // Unlinks z (rb_erase) and clears its links; the run map beside the tree after a test claim loses z's range too.
    private void Erase(VfioDma z)
    {
        bool neighboursKnown = false;
        if (ReferenceEquals(z, _lastLinked))
        {
            _lastLinked = null;
            neighboursKnown = _lastLinkedInGap;
        }
        _lastLinkedInGap = false;
        if (!neighboursKnown)
        {
            _gapLow = Previous(z);
            _gapHigh = Next(z);
        }
        System.Diagnostics.Debug.Assert(ReferenceEquals(_gapLow, Previous(z)) && ReferenceEquals(_gapHigh, Next(z)),
            "the gap a link went into holds the linked mapping's neighbours until the next link or unlink");
        _gapKnown = true;
        _claimed?.Remove(z.Range.Start, z.Range.Last);
        bool removedRed;
        VfioDma? x;
        VfioDma? xParent;
        if (z.TreeLeft is null || z.TreeRight is null)
        {
            x = z.TreeLeft ?? z.TreeRight;
            xParent = z.TreeParent;
            removedRed = z.TreeRed;
            Replace(z, x);
        }
        else
        {
            // Two children: z's successor y (leftmost of its right subtree) takes z's place and colour.
            VfioDma y = z.TreeRight;
            while (y.TreeLeft is { } l)
            {
                y = l;
            }
            removedRed = y.TreeRed;
            x = y.TreeRight;
            if (ReferenceEquals(y.TreeParent, z))
            {
                xParent = y;
            }
            else
            {
                xParent = y.TreeParent;
                Replace(y, x);
                y.TreeRight = z.TreeRight;
                y.TreeRight.TreeParent = y;
            }
            Replace(z, y);
            y.TreeLeft = z.TreeLeft;
            y.TreeLeft.TreeParent = y;
            y.TreeRed = z.TreeRed;
        }
        if (!removedRed)
        {
            EraseFixup(x, xParent);
        }
        z.TreeLeft = null;
        z.TreeRight = null;
        z.TreeParent = null;
        z.TreeRed = false;
    }

    // Red-black deletion repair: x (maybe null) under parent carries an extra black.
    private void EraseFixup(VfioDma? x, VfioDma? parent)
    {
        while (!ReferenceEquals(x, _root) && !IsRed(x))
        {
            VfioDma p = parent!;
            bool sib = ReferenceEquals(x, p.TreeLeft); // the side of x's sibling: right when x is the left child
            VfioDma w = Child(p, sib)!; // the extra black means the sibling side is not empty
            if (w.TreeRed)
            {
                w.TreeRed = false;
                p.TreeRed = true;
                Rotate(p, left: sib);
                w = Child(p, sib)!;
            }
            if (!IsRed(w.TreeLeft) && !IsRed(w.TreeRight))
            {
                w.TreeRed = true;
                x = p;
                parent = p.TreeParent;
                continue;
            }
            if (!IsRed(Child(w, sib)))
            {
                Child(w, !sib)!.TreeRed = false;
                w.TreeRed = true;
                Rotate(w, left: !sib);
                w = Child(p, sib)!;
            }
            w.TreeRed = p.TreeRed;
            p.TreeRed = false;
            Child(w, sib)!.TreeRed = false;
            Rotate(p, left: sib);
            x = _root;
            break;
        }
        if (x is not null)
        {
            x.TreeRed = false;
        }
    }

    /// <summary>Test hook (lock held): whether the links are a sound red-black tree in IOVA order (parent links, no red
    /// node with a red child, one black height, disjoint ascending ranges) holding <see cref="CountLocked"/> mappings
    /// (with a MAP's not yet counted one, <paramref name="uncounted"/>).</summary>
    public bool IsSoundForTestLocked(int uncounted = 0)
    {
        _ctx.AssertLocked();
        if (_root is { } r && (r.TreeParent is not null || r.TreeRed))
        {
            return false;
        }
        int nodes = 0;
        ulong? lastEnd = null;
        bool ordered = true;
        for (VfioDma? d = First(); d is not null; d = Next(d))
        {
            ordered &= lastEnd is null || d.Range.Start > lastEnd;
            lastEnd = d.Range.Last;
            nodes++;
        }
        return ordered && nodes == _count + uncounted && BlackHeight(_root) >= 0;
    }

    // -1 when the subtree breaks a red-black rule or a parent link.
    private static int BlackHeight(VfioDma? n)
    {
        if (n is null)
        {
            return 1;
        }
        if ((n.TreeLeft is { } l && !ReferenceEquals(l.TreeParent, n)) || (n.TreeRight is { } rr && !ReferenceEquals(rr.TreeParent, n))
            || (n.TreeRed && (IsRed(n.TreeLeft) || IsRed(n.TreeRight))))
        {
            return -1;
        }
        int a = BlackHeight(n.TreeLeft);
        int b = BlackHeight(n.TreeRight);
        return a < 0 || a != b ? -1 : a + (n.TreeRed ? 0 : 1);
    }

    /// <summary>The tree's runs overlapping a span, clipped to it, in IOVA order (one per mapping; after a test claim,
    /// the run map's). Allocates nothing while the tree is sound.</summary>
    public readonly struct RunEnumerable(DmaTree tree, ulong start, ulong last)
    {
        /// <summary>The enumerator (pattern-based <c>foreach</c>).</summary>
        public RunEnumerator GetEnumerator() => new(tree, start, last);
    }

    /// <summary>Enumerator of <see cref="RunEnumerable"/>. The tree must not change during the walk.</summary>
    public struct RunEnumerator
    {
        private readonly ulong _start;
        private readonly ulong _last;
        private readonly List<Run<DmaRef>>? _runs;
        private VfioDma? _next;
        private int _index;

        internal RunEnumerator(DmaTree tree, ulong start, ulong last)
        {
            _start = start;
            _last = last;
            _index = -1;
            if (tree._claimed is { } claimed)
            {
                _runs = [.. claimed.Overlapping(start, last)];
                _next = null;
            }
            else
            {
                _runs = null;
                _next = tree.FirstEndingAtOrAfter(start);
            }
            Current = default;
        }

        /// <summary>The current run.</summary>
        public Run<DmaRef> Current { get; private set; }

        /// <summary>Advances to the next run.</summary>
        public bool MoveNext()
        {
            if (_runs is not null)
            {
                if (++_index >= _runs.Count)
                {
                    return false;
                }
                Current = _runs[_index];
                return true;
            }
            VfioDma? d = _next;
            if (d is null || d.Range.Start > _last)
            {
                return false;
            }
            Current = new Run<DmaRef>(Math.Max(d.Range.Start, _start), Math.Min(d.Range.Last, _last), new DmaRef(d));
            VfioDma? next = Next(d);
            _next = next;
            if (next is not null)
            {
                PrefetchAhead(d, next);
            }
            return true;
        }

        // Issue 16: the checker's full sweep walks every mapping (65,535 after as many single-page MAP_DMA calls), and
        // the walk's loads wait on each other — each node is first reached through its parent's or child's link, a
        // cache miss at the end of a checked run: about a third of the sweep's samples sat on the descent into a right
        // subtree. Mappings made in IOVA order (QEMU's RAM, the benchmark) were allocated in that order, so the GC heap
        // holds them at a near-constant stride in the order the walk visits them: the node that stride predicts eight
        // steps ahead is asked for now (both cache lines of its 120 bytes), and its miss overlaps the steps between.
        // A hint only: where the prediction is wrong the prefetch is wasted; it never faults and reads nothing into the
        // program (the addresses are not dereferenced). Measured (`--check-cost sweepcold-65535`, in-process A/B after a
        // cache flush): the cold sweep ~3.3 → ~2.8 ms; four steps ahead or sixteen were no better than eight.
        private static unsafe void PrefetchAhead(VfioDma d, VfioDma next)
        {
            if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
            {
                nint at = Unsafe.As<VfioDma, nint>(ref next);
                nint stride = at - Unsafe.As<VfioDma, nint>(ref d);
                byte* ahead = (byte*)(at + (stride * 8));
                System.Runtime.Intrinsics.X86.Sse.Prefetch0(ahead);
                System.Runtime.Intrinsics.X86.Sse.Prefetch0(ahead + 64);
            }
        }
    }
}
