using System.Runtime.CompilerServices;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;

namespace VfioLab.Checks;

// The narrow check's first look (issue 16): the window of what a MAP_DMA or UNMAP_DMA changed (the range, the mappings
// overlapping it and the gaps beside it, not the neighbouring mappings themselves), read where it is
// under the container's lock — no snapshot, nothing allocated — in one pass: the DMA tree's runs in the window, and with
// them the first domain's page-table runs, advancing together (each mapping must be covered exactly by translations with
// its protection and nothing translated between mappings); the frames each mapping reaches are merged where they
// continue, counted for its charge, collected for the pin test (one batch, one lock of the host memory) and, when they
// do not come in ascending order, sorted once for host-page-charged-once. Any other domain is compared with the first
// run by run over the window.
//
// It answers "clean" only where each of the full sweep's per-container checks over the window would find nothing; what
// it does not handle in place (external pins, pending invalidations, frames outside RAM, a frame holding no pin,
// reserved frames translated twice, a count that does not add up, ...) it answers "suspect", and the caller checks the
// window again through the windowed snapshot, whose messages are the full sweep's. Being wrong towards "suspect" costs
// time, never a violation.
internal sealed partial class InvariantChecker
{
    private const int RunChunk = 256;
    private const int PinBatch = 1024;
    private readonly MappedRun[] _runsA = new MappedRun[RunChunk];
    private readonly MappedRun[] _runsB = new MappedRun[RunChunk];
    private readonly (ulong First, ulong Count)[] _pinBatch = new (ulong, ulong)[PinBatch];
    private const int KeptFrames = 4096;
    private ulong[] _frameFirsts = new ulong[64];
    private ulong[] _frameLasts = new ulong[64];
    private ulong[]? _frameBits;
    private ulong _hostPins;

    private enum InPlaceOutcome
    {
        /// <summary>Nothing in the window would be reported by the per-container checks.</summary>
        Clean,

        /// <summary>Something is out of the ordinary: check the window through the windowed snapshot.</summary>
        Suspect,

        /// <summary>The full sweep: the container holds device memory or has pinning devices, or the window no longer
        /// covers what it held before the call.</summary>
        Sweep,
    }

    private static readonly ByteRange Everything = new(0, ulong.MaxValue);
    // The IOVA window the last mapping of the pass was in (InOneWindow).
    private int _windowHint;

    /// <summary>How many checks after a MAP_DMA found its mapping through what the MAP handed over, without searching
    /// the tree, and found it clean (for tests).</summary>
    internal long HandedOverChecks { get; private set; }
    private readonly Dictionary<AddressSpace, MmCharge> _sweepCharges = new(ReferenceEqualityComparer.Instance);

    // The narrow check's pass: the window is the changed range with the mappings overlapping it and the gaps beside it,
    // up to the neighbouring mappings, which are not read again (what the call changed lies inside; a consistent state
    // before it had the neighbours checked). For a MAP that linked its mapping the window is found now (the gaps beside
    // the new mapping); otherwise it is the one read before the call, so what it held then and holds now compare.
    private InPlaceOutcome CheckWindowInPlace(VfioIommu iommu, ByteRange changed, bool linked, ref Capture before, ref WindowSums now,
        ref Counters counters, out ulong hostPins)
    {
        hostPins = 0;
        using (iommu.CheckLock.EnterScope())
        {
            if (iommu.DevicesTakePartForCheckLocked)
            {
                return InPlaceOutcome.Sweep;
            }
            if (linked)
            {
                before = before with { Window = iommu.TreeForCheck.CheckGapWindowLocked(changed.Start, changed.Last) };
            }
            ByteRange w = before.Window;
            InPlaceOutcome outcome = WindowLocked(iommu, w, w, ref now, ref counters, null, out hostPins);
            TrimFrames();
            return outcome == InPlaceOutcome.Clean && now.Overflow ? InPlaceOutcome.Suspect : outcome;
        }
    }

    // The frame arrays grow with the largest mapping a pass covered (one entry per merged translation); a check
    // after a MAP of scattered memory must not keep them for the life of the host.
    private void TrimFrames()
    {
        if (_frameFirsts.Length > KeptFrames)
        {
            _frameFirsts = new ulong[64];
            _frameLasts = new ulong[64];
        }
        _frameBits = null;
    }

    // The full sweep's mappings and page tables of one container, in place over its whole IOVA space: a Type1State
    // without mappings or runs (what the group, window and counter checks read) with the counts, pins and charges the
    // pass summed, when it found nothing; null when the container needs the snapshot (devices, or anything suspect).
    private Type1State? SweepInPlace(Vfio.VfioContainer c, VfioIommu iommu)
    {
        WindowSums sums = default;
        Counters counters = default;
        _sweepCharges.Clear();
        using (iommu.CheckLock.EnterScope())
        {
            bool clean = !iommu.DevicesTakePartForCheckLocked
                && WindowLocked(iommu, Everything, Everything, ref sums, ref counters, _sweepCharges, out _) == InPlaceOutcome.Clean;
            TrimFrames();
            if (!clean)
            {
                return null;
            }
        }
        return new Type1State(c, iommu.SnapshotWithoutMappingsForCheck())
        {
            MappingCount = sums.Mappings,
            VaddrInvalid = sums.VaddrInvalid,
            PinsHeld = sums.Pins,
            InPlaceCharges = [.. _sweepCharges],
        };
    }

    // What the pass reads of the container before its mappings (lock held): false when something there is out of the
    // ordinary (a BUG() record, v1 tracking, another domain's pending invalidation, unsorted windows, domains that
    // translate the window differently).
    private bool TryViewLocked(VfioIommu iommu, ByteRange w, ref Counters counters, out ContainerView view)
    {
        view = default;
        if (iommu.HasNotifierBugForCheckLocked || (iommu.DirtyTrackingForCheckLocked && !iommu.V2))
        {
            return false;
        }
        DmaTree tree = iommu.TreeForCheck;
        DomainSet set = iommu.DomainsForCheck;
        IReadOnlyList<VfioDomain> domains = set.DomainsLocked;
        ulong pageSize = iommu.PageSizeForCheck;
        ulong align = pageSize;
        int nonPinned = 0;
        int domainCount = domains.Count;
        for (int i = 0; i < domainCount; i++)
        {
            VfioDomain d = domains[i];
            align = Math.Max(align, d.Domain.MinPageSize);
            // The first domain's pending invalidations are read with its runs, in the pass (one lock round trip).
            if (i > 0 && d.Domain.HasPendingInvalidationsForCheck)
            {
                return false;
            }
            foreach (Type1Group g in d.Groups)
            {
                nonPinned += g.PinnedPageDirtyScope ? 0 : 1;
            }
        }
        counters = new Counters(tree.DmaAvailLocked, tree.DmaEntryLimit, tree.CountLocked, tree.VaddrInvalidCountLocked, set.NumNonPinnedGroupsLocked,
            nonPinned, set.EmulatedGroupsLocked.Count);
        ByteRange[] windows = iommu.IovaRangesForCheckLocked is ByteRange[] array ? array : [.. iommu.IovaRangesForCheckLocked];
        int windowCount = windows.Length;
        for (int i = 0; i < windowCount; i++)
        {
            if (windows[i].Start > windows[i].Last || (i > 0 && windows[i - 1].Last >= windows[i].Start))
            {
                return false;
            }
        }
        ulong bitmapPgsize = PageSizeBitmap.MinPageSize(set.PgsizeBitmapLocked);
        bitmapPgsize = bitmapPgsize == 0 ? 0 : Math.Max(bitmapPgsize, pageSize);
        for (int i = 1; i < domainCount; i++)
        {
            if (!SameTranslations(domains[0].Domain, domains[i].Domain, w))
            {
                return false;
            }
        }
        // One IOVA window (or none) is the common case: no search per mapping.
        _windowHint = 0;
        view = new ContainerView(domainCount > 0 ? domains[0].Domain : null, align, pageSize, iommu.DirtyTrackingForCheckLocked, bitmapPgsize, windows,
            windowCount == 1 ? windows[0] : Everything, windowCount > 1);
        return true;
    }

    // Everything the full sweep's per-container checks hold one mapping to that is its own (its tree run exactly its
    // extent, sized, aligned, with a sound bitmap, inside one IOVA window, no external pins, iommu_mapped as the domains
    // say), before its translations are read.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool MappingSound(in ContainerView v, VfioDma d, Run<DmaRef> r) =>
        r.Start == d.Range.Start && r.Last == d.Last && d.RequestedSize != 0 && d.Size == d.RequestedSize
        && ((d.Range.Start | d.RequestedSize) & (v.Align - 1)) == 0 && (d.Vaddr.Value & (v.PageSize - 1)) == 0 && !d.HasExternalPins
        && BitmapSound(d, v.Tracking, v.BitmapPgsize) && (v.SearchWindows ? InOneWindow(v.Windows, d.Range, ref _windowHint) : v.OnlyWindow.Contains(d.Range))
        && d.IommuMapped == (v.First is not null);

    private InPlaceOutcome WindowLocked(VfioIommu iommu, ByteRange w, ByteRange before, ref WindowSums now, ref Counters counters,
        Dictionary<AddressSpace, MmCharge>? charges, out ulong hostPins)
    {
        hostPins = 0;
        if (!TryViewLocked(iommu, w, ref counters, out ContainerView view))
        {
            return InPlaceOutcome.Suspect;
        }
        var pass = new FramePass(this, host.Machine.Memory, host.Machine.PageShift);
        var first = new RunStream(view.First, w, _runsA);
        bool domains = view.First is not null;
        // The sweep's charges are summed per run of mappings of one mm (one dictionary lookup per run, not per mapping).
        AddressSpace? runMm = null;
        long runCharged = 0;
        int runMappings = 0;
        foreach (Run<DmaRef> r in iommu.TreeForCheck.RunsLocked(w))
        {
            VfioDma d = r.Value.Dma;
            if (!MappingSound(in view, d, r))
            {
                return InPlaceOutcome.Suspect;
            }
            ulong chargeable = 0;
            if (domains && (first.TranslatesBefore(d.Range.Start) || !pass.Cover(ref first, d, out chargeable)))
            {
                return InPlaceOutcome.Suspect;
            }
            if (d.Mm.IsAlive && d.LockedVm != (long)chargeable)
            {
                return InPlaceOutcome.Suspect;
            }
            if (charges is not null)
            {
                now.AddCounts(d.VaddrInvalid, chargeable);
                if (!ReferenceEquals(d.Mm, runMm))
                {
                    if (runMm is not null)
                    {
                        AddCharge(charges, runMm, runCharged, runMappings);
                    }
                    runMm = d.Mm;
                    runCharged = 0;
                    runMappings = 0;
                }
                runCharged += d.LockedVm;
                runMappings++;
            }
            else if (d.Range.Overlaps(before))
            {
                now.Add(d.Mm, d.LockedVm, d.VaddrInvalid, chargeable);
            }
        }
        if (runMm is not null)
        {
            AddCharge(charges!, runMm, runCharged, runMappings);
        }
        if (domains && (w.Last != ulong.MaxValue ? first.TranslatesBefore(w.Last + 1) : first.TranslatesAnything()))
        {
            return InPlaceOutcome.Suspect;
        }
        if (first.PendingSeen)
        {
            return InPlaceOutcome.Suspect;
        }
        bool pinned = pass.FlushPins();
        hostPins = _hostPins;
        return pinned ? InPlaceOutcome.Clean : InPlaceOutcome.Suspect;
    }

    // The pass over a window the tree's links show holds one mapping, d (a MAP's hand-over): no tree search, and the
    // first domain's runs over the window read in one copy, which must be exactly d's translations. "Clean" or "not
    // sure" (false): the caller then reads the window again with WindowLocked.
    private bool AloneLocked(VfioIommu iommu, VfioDma d, ByteRange w, ref WindowSums now, ref Counters counters, out ulong hostPins)
    {
        hostPins = 0;
        if (!TryViewLocked(iommu, w, ref counters, out ContainerView view) || !MappingSound(in view, d, new Run<DmaRef>(d.Range.Start, d.Last, new DmaRef(d))))
        {
            return false;
        }
        ulong chargeable = 0;
        var pass = new FramePass(this, host.Machine.Memory, host.Machine.PageShift);
        if (view.First is not null)
        {
            int n = view.First.CopyRunsForCheck(w.Start, w.Last, _runsA, out bool pending);
            if (pending || n == _runsA.Length || !pass.CoverExactly(_runsA.AsSpan(0, n), d, out chargeable))
            {
                return false;
            }
        }
        if (d.Mm.IsAlive && d.LockedVm != (long)chargeable)
        {
            return false;
        }
        now.Add(d.Mm, d.LockedVm, d.VaddrInvalid, chargeable);
        bool pinned = pass.FlushPins();
        hostPins = _hostPins;
        return pinned && !now.Overflow;
    }

    /// <summary>What <see cref="TryViewLocked"/> read of a container for the pass over its mappings.</summary>
    private readonly record struct ContainerView(IommuDomain? First, ulong Align, ulong PageSize, bool Tracking, ulong BitmapPgsize,
        ByteRange[] Windows, ByteRange OnlyWindow, bool SearchWindows);

    // §4.8 for one mapping, as CheckDirtyBitmaps.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool BitmapSound(VfioDma d, bool tracking, ulong pgsize)
    {
        long words = d.Bitmap?.LongLength ?? -1;
        if (!tracking)
        {
            return words < 0;
        }
        ulong bits = pgsize == 0 ? 0 : d.RequestedSize / pgsize;
        ulong need = ((bits + 63) / 64) + 1;
        return words >= 0 && (ulong)words >= need;
    }

    // §4.10 for one mapping, as CheckIovaWindows: inside the last window starting at or before it. The windows are
    // sorted and disjoint (TryViewLocked), so the one that holds it is that one: the window the last mapping was in
    // (hint) is tried first, as mappings come in IOVA order (the sweep's 65,535 mappings in two windows searched each
    // time cost a tenth of it).
    private static bool InOneWindow(ByteRange[] w, ByteRange m, ref int hint)
    {
        if ((uint)hint < (uint)w.Length && w[hint].Contains(m))
        {
            return true;
        }
        int lo = 0;
        int hi = w.Length - 1;
        int at = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (w[mid].Start <= m.Start)
            {
                at = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        hint = Math.Max(at, 0);
        return at >= 0 && w[at].Contains(m);
    }

    // Whether two domains translate every IOVA of the window to the same physical address with the same protection:
    // the merged translations CheckDomainsAgree compares are equal exactly then, whatever IOPTE sizes build them.
    private bool SameTranslations(IommuDomain a, IommuDomain b, ByteRange w)
    {
        var sa = new RunStream(a, w, _runsA);
        var sb = new RunStream(b, w, _runsB);
        while (true)
        {
            bool ha = sa.TryCurrent(out MappedRun ra, out ulong at);
            bool hb = sb.TryCurrent(out MappedRun rb, out ulong bt);
            if (!ha || !hb)
            {
                return ha == hb;
            }
            if (at != bt || ra.Prot != rb.Prot || ra.Phys.Value + (at - ra.Iova.Start) != rb.Phys.Value + (bt - rb.Iova.Start))
            {
                return false;
            }
            ulong end = Math.Min(ra.Iova.Last, rb.Iova.Last);
            sa.ConsumeThrough(end);
            sb.ConsumeThrough(end);
        }
    }

    /// <summary>A domain's page-table runs over a window, in IOVA order, copied a chunk at a time into a buffer the
    /// checker keeps; a position inside the current run says how much of it was consumed.</summary>
    private struct RunStream(IommuDomain? domain, ByteRange window, MappedRun[] buffer)
    {
        private int _count;
        private int _index;
        private ulong _fetchFrom = window.Start;
        private bool _fetchedAll = domain is null;
        private ulong _pos = window.Start;
        private bool _posPastTop;

        /// <summary>Whether the domain had an IOTLB invalidation pending at any fetch.</summary>
        public bool PendingSeen { get; private set; }

        /// <summary>The current run and the first IOVA of it not consumed yet; false when none is left.</summary>
        /// <remarks>Issue 16: called twice per mapping of the full sweep (the gap before it, then its translations); the
        /// common case, a copied run not consumed yet, is inline and the rest (skipping consumed runs, copying the next
        /// chunk) a call, instead of a call every time.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TryCurrent(out MappedRun run, out ulong at)
        {
            if (_index < _count)
            {
                run = buffer[_index];
                if (run.Iova.Last >= _pos)
                {
                    at = Math.Max(run.Iova.Start, _pos);
                    return true;
                }
            }
            return TryCurrentSlow(out run, out at);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private bool TryCurrentSlow(out MappedRun run, out ulong at)
        {
            while (true)
            {
                if (_index == _count)
                {
                    if (_fetchedAll || _posPastTop)
                    {
                        run = default;
                        at = 0;
                        return false;
                    }
                    _count = domain!.CopyRunsForCheck(_fetchFrom, window.Last, buffer, out bool pending);
                    PendingSeen |= pending;
                    _index = 0;
                    if (_count < buffer.Length)
                    {
                        _fetchedAll = true;
                    }
                    if (_count == 0)
                    {
                        continue;
                    }
                    ulong tail = buffer[_count - 1].Iova.Last;
                    if (tail >= window.Last)
                    {
                        _fetchedAll = true;
                    }
                    else
                    {
                        _fetchFrom = tail + 1;
                    }
                }
                run = buffer[_index];
                if (run.Iova.Last < _pos)
                {
                    _index++;
                    continue;
                }
                at = Math.Max(run.Iova.Start, _pos);
                return true;
            }
        }

        /// <summary>Whether the runs copied so far are all consumed and the window is not read to its end: the next
        /// run would be copied from the page table.</summary>
        public readonly bool NeedsFetch => _index == _count && !_fetchedAll && !_posPastTop;

        /// <summary>When <see cref="NeedsFetch"/>: hands the runs from the position through <paramref name="last"/> (inside
        /// the window) straight from the page table to <paramref name="visitor"/>, as <see cref="TryCurrent"/> would
        /// return them (a run begun before the position clipped to it), and marks them consumed as
        /// <see cref="ConsumeThrough"/> would. A visitor that stops early leaves the stream somewhere in between: its pass
        /// is over.</summary>
        public void VisitThrough<TVisitor>(ulong last, ref TVisitor visitor)
            where TVisitor : struct, IPackedRunVisitor<IopteRun>, allows ref struct
        {
            domain!.VisitRunsForCheck(_pos, last, ref visitor, out bool pending);
            PendingSeen |= pending;
            _index = _count = 0;
            if (last >= window.Last)
            {
                _fetchedAll = true;
            }
            else
            {
                _fetchFrom = last + 1;
            }
            ConsumeThrough(last);
        }

        /// <summary>Marks everything up to <paramref name="last"/> consumed.</summary>
        public void ConsumeThrough(ulong last)
        {
            if (last == ulong.MaxValue)
            {
                _posPastTop = true;
                _index = _count;
                return;
            }
            _pos = last + 1;
            if (_index < _count && buffer[_index].Iova.Last <= last)
            {
                _index++;
            }
        }

        /// <summary>Whether anything not consumed yet is translated below <paramref name="iova"/> (a translation in
        /// the gap before a mapping; <see cref="ConsumeThrough"/> past the gap afterwards).</summary>
        public bool TranslatesBefore(ulong iova)
        {
            bool any = TryCurrent(out _, out ulong at) && at < iova;
            if (!any && iova > 0)
            {
                ConsumeThrough(iova - 1);
            }
            return any;
        }

        /// <summary>Whether anything not consumed yet is translated.</summary>
        public bool TranslatesAnything() => TryCurrent(out _, out _);
    }

    /// <summary>The frames of one window's translations: a mapping's frame runs merged where physical addresses
    /// continue, counted for its charge, batched for the pin test, and kept for host-page-charged-once.</summary>
    private struct FramePass(InvariantChecker owner, PhysicalMemory memory, int shift)
    {
        private int _pins;
        private int _frames;
        private bool _ascending;
        private bool _marking;
        private bool _twice;
        private int _markWords;
        private readonly bool _noReserved = !memory.HasReservedFrames;
        private readonly ulong _zero = memory.ZeroFrame?.Value ?? ulong.MaxValue; // MaxValue: no zero frame, never in a run

        // Cover's position in the mapping it consumes: the next IOVA, the mapping's last, its protection, the merged
        // translation open (physical first and last), the pages counted so far, and whether the last IOVA was reached.
        private ulong _cursor;
        private ulong _last;
        private IommuProt _prot;
        private bool _open;
        private ulong _segPhys;
        private ulong _segLast;
        private ulong _chargeable;
        private bool _covered;
        private ulong _pages; // the mapping's size in host pages

        /// <summary>Consumes the translations of <paramref name="d"/>: true when they cover it exactly with its protection
        /// | IOMMU_CACHE, in RAM, and reach no host frame twice; <paramref name="chargeable"/> its non-reserved pages.</summary>
        public bool Cover(ref RunStream runs, VfioDma d, out ulong chargeable)
        {
            Start(d, out chargeable);
            while (!_covered)
            {
                if (runs.NeedsFetch)
                {
                    // Issue 16: the rest of the mapping is read where the page table holds it (a packed leaf's runs a
                    // leaf at a time, TakePacked), instead of copied a chunk at a time and read back: the check after the
                    // 64 GiB scenario's MAP of 16.8 M one-page runs went from ~0.5 s to ~0.25 s of CPU in `vfiolab run`.
                    var visitor = new CoverVisitor(ref this);
                    runs.VisitThrough(d.Last, ref visitor);
                    if (!visitor.Sound)
                    {
                        return false;
                    }
                    break;
                }
                if (!runs.TryCurrent(out MappedRun r, out ulong at))
                {
                    return false;
                }
                ulong last = Math.Min(r.Iova.Last, d.Last);
                if (!Take(at, last, r.Phys.Value + (at - r.Iova.Start), r.Prot))
                {
                    return false;
                }
                runs.ConsumeThrough(last);
            }
            chargeable = _chargeable;
            bool sound = _covered && Segment(_segPhys, _segLast, ref chargeable) && ChargedOnce();
            return sound;
        }

        /// <summary>Whether <see cref="Cover"/>'s mapping is covered through its last IOVA.</summary>
        public readonly bool Covered => _covered;

        /// <summary><see cref="Take"/> for a run as the page table holds it (<see cref="CoverVisitor"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TakeRun(ulong start, ulong last, IopteRun run) => Take(start, last, run.Phys.Value, run.Prot);

        /// <summary><see cref="Take"/> for each of a packed leaf's runs (<see cref="CoverVisitor"/>): back to back from
        /// <paramref name="start"/>, <paramref name="unit"/> bytes each, to the frames and with the protection their
        /// words hold (IopteRun's packed form).</summary>
        /// <remarks>Issue 16: the loop over the 16.8 M one-page runs the check after the 64 GiB scenario's MAP reads, run
        /// once in `vfiolab run`: optimized from its first call, its state in registers (as an on-stack replacement of
        /// the map's walk with Take inlined it spilled to the stack, ~15 ns a run).</remarks>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public bool TakePacked(ulong start, ulong unit, ReadOnlySpan<ulong> packed)
        {
            if (start != _cursor)
            {
                return false;
            }
            IommuProt prot = _prot;
            bool open = _open;
            ulong segPhys = _segPhys;
            ulong segLast = _segLast;
            ulong chargeable = _chargeable;
            bool sound = true;
            int from = 0;
            if (open && _marking && _noReserved)
            {
                from = MarkPacked(packed, unit, ref segPhys, ref segLast, ref chargeable);
                sound = from == packed.Length;
            }
            foreach (ulong word in sound ? packed[from..] : [])
            {
                IopteRun run = IopteRun.Unpack(word);
                if (run.Prot != prot)
                {
                    sound = false;
                    break;
                }
                ulong phys = run.Phys.Value;
                if (open && segLast != ulong.MaxValue && segLast + 1 == phys)
                {
                    segLast = phys + (unit - 1);
                    continue;
                }
                if (open && !Segment(segPhys, segLast, ref chargeable))
                {
                    sound = false;
                    break;
                }
                segPhys = phys;
                segLast = phys + (unit - 1);
                open = true;
            }
            _open = open;
            _segPhys = segPhys;
            _segLast = segLast;
            _chargeable = chargeable;
            if (!sound)
            {
                return false;
            }
            ulong last = start + ((ulong)packed.Length * unit) - 1;
            _covered = last == _last;
            _cursor = last + 1;
            return true;
        }

        /// <summary><see cref="TakePacked"/>'s loop once the mapping's frames go into the bitmap and no frame is
        /// reserved (what Segment then does, inlined by hand): returns how many of <paramref name="packed"/>'s runs it
        /// took, all of them unless one was not sound (then the pass is over: "suspect").</summary>
        /// <remarks>Issue 16: the 16.8 M one-page runs of the 64 GiB scenario's MAP but the first few hundred thousand
        /// come here. Nothing in the loop is a call, so what it reads stays in registers: Segment's other paths
        /// (reserved frames, the runs kept before the bitmap) call out, and with them in the loop it spilled its state to
        /// the stack at every run.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private int MarkPacked(ReadOnlySpan<ulong> packed, ulong unit, ref ulong segPhys, ref ulong segLast, ref ulong chargeable)
        {
            Span<ulong> bits = owner._frameBits.AsSpan(0, _markWords);
            IommuProt prot = _prot;
            ulong frames = memory.FrameCount;
            ulong zero = _zero;
            int pageShift = shift;
            ulong phys0 = segPhys;
            ulong last0 = segLast;
            ulong counted = chargeable;
            bool twice = false;
            PrefetchMarks(bits, packed, pageShift);
            int k = 0;
            for (; k < packed.Length; k++)
            {
                IopteRun run = IopteRun.Unpack(packed[k]);
                if (run.Prot != prot)
                {
                    break;
                }
                ulong phys = run.Phys.Value;
                if (last0 != ulong.MaxValue && last0 + 1 == phys)
                {
                    last0 = phys + (unit - 1);
                    continue;
                }
                // The merged translation this run ends: in RAM, counted (the zero frame is not), marked once.
                ulong pf = phys0 >> pageShift;
                ulong pl = last0 >> pageShift;
                if (pl >= frames || pl < pf)
                {
                    break;
                }
                counted += pl - pf + 1 - (zero - pf <= pl - pf ? 1UL : 0UL);
                if ((pf >> 6) == (pl >> 6))
                {
                    ref ulong w = ref bits[(int)(pf >> 6)];
                    ulong mask = (ulong.MaxValue << (int)(pf & 63)) & (ulong.MaxValue >> (63 - (int)(pl & 63)));
                    twice |= (w & mask) != 0;
                    w |= mask;
                }
                else
                {
                    twice |= !MarkOnce(bits, pf, pl);
                }
                phys0 = phys;
                last0 = phys + (unit - 1);
            }
            segPhys = phys0;
            segLast = last0;
            chargeable = counted;
            _twice |= twice;
            return k;
        }

        // Asks the CPU to fetch the bitmap word each of a leaf's runs will mark before MarkPacked marks them: on shattered
        // memory each lands in another word of a bitmap larger than the core's L2 (2.4 MB for the 64 GiB scenario's
        // 72 GiB host), and the marks waited for their cache misses a few at a time. A prefetch hint reads nothing into
        // the program and never faults (see FrameCountMap.Prefetch, the model's other use).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void PrefetchMarks(Span<ulong> bits, ReadOnlySpan<ulong> packed, int pageShift)
        {
            if (!System.Runtime.Intrinsics.X86.Sse.IsSupported)
            {
                return;
            }
            ref ulong first = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(bits);
            foreach (ulong word in packed)
            {
                ulong w = (IopteRun.Unpack(word).Phys.Value >> pageShift) >> 6;
                if (w < (ulong)bits.Length)
                {
                    System.Runtime.Intrinsics.X86.Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref first, (nint)w)));
                }
            }
        }

        /// <summary>The next translation of the mapping <see cref="Cover"/> consumes: <c>[at, last]</c> to
        /// <paramref name="phys"/> with <paramref name="prot"/>. False when it does not continue the mapping where the last
        /// one ended, with its protection, or a merged translation it ends is not sound.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private bool Take(ulong at, ulong last, ulong phys, IommuProt prot)
        {
            if (at != _cursor || prot != _prot)
            {
                return false;
            }
            ulong physLast = phys + (last - at);
            if (_open && _segLast != ulong.MaxValue && _segLast + 1 == phys)
            {
                _segLast = physLast;
            }
            else
            {
                if (_open && !Segment(_segPhys, _segLast, ref _chargeable))
                {
                    return false;
                }
                _segPhys = phys;
                _segLast = physLast;
                _open = true;
            }
            _covered = last == _last;
            _cursor = last + 1;
            return true;
        }

        /// <summary><see cref="Cover"/> over runs already copied, which must be exactly <paramref name="d"/>'s
        /// translations: the first starting at its first IOVA, each continuing the last, the last ending at its last IOVA
        /// (a translation beside it, in the window the runs were copied from, makes this false).</summary>
        public bool CoverExactly(ReadOnlySpan<MappedRun> runs, VfioDma d, out ulong chargeable)
        {
            Start(d, out chargeable);
            for (int i = 0; i < runs.Length; i++)
            {
                MappedRun r = runs[i];
                if (r.Iova.Last > d.Last || !Take(r.Iova.Start, r.Iova.Last, r.Phys.Value, r.Prot))
                {
                    return false;
                }
                if (_covered)
                {
                    chargeable = _chargeable;
                    return i == runs.Length - 1 && Segment(_segPhys, _segLast, ref chargeable) && ChargedOnce();
                }
            }
            return false;
        }

        // Cover's and CoverExactly's start on a mapping: the pass begun (Begin), at its first IOVA, no translation open.
        private void Start(VfioDma d, out ulong chargeable)
        {
            _prot = Begin(d, out chargeable);
            _cursor = d.Range.Start;
            _last = d.Last;
            _open = false;
            _covered = false;
            _chargeable = 0;
        }

        // A new mapping's pass: nothing counted or kept yet; the protection its translations must carry.
        private IommuProt Begin(VfioDma d, out ulong chargeable)
        {
            chargeable = 0;
            _pages = d.Size >> shift;
            _frames = 0;
            _ascending = true;
            _marking = false;
            _twice = false;
            return d.Prot | IommuProt.Cache;
        }

        // One merged translation of a mapping: in RAM, counted, queued for the pin test and kept for charged-once.
        // Issue 16: inlined where Cover takes runs (one call per run of shattered memory); what it does until the runs go
        // into the bitmap is Keep's.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private bool Segment(ulong phys, ulong physLast, ref ulong chargeable)
        {
            ulong pf = phys >> shift;
            ulong pl = physLast >> shift;
            if (pl >= memory.FrameCount || pl < pf)
            {
                return false;
            }
            ulong n = pl - pf + 1;
            // What CountReservedOrInvalid counts, without the call where no frame is reserved (the frames are RAM, tested
            // above; only the zero frame can count): it was a tenth of the check after a MAP of 16.8 M one-page runs.
            chargeable += n - (_noReserved ? (_zero - pf <= pl - pf ? 1UL : 0UL) : memory.CountReservedOrInvalid(new Pfn(pf), n));
            if (_marking)
            {
                // Pins are read from the bitmap, in frame order, when the mapping is covered (ChargedOnce).
                _twice |= !MarkOnce(owner._frameBits, pf, pl);
                return true;
            }
            return Keep(pf, pl, n);
        }

        // Segment's frames queued for the pin test and kept for charged-once, until there are so many that they go into
        // a bitmap. Issue 16: optimized from its first call, as what calls it (a walk over a mapping's runs, run once in
        // `vfiolab run`) calls it up to a bitmap's words of times (295 K for the 64 GiB scenario) before the runtime's
        // tiering would have replaced its first, unoptimized code.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private bool Keep(ulong pf, ulong pl, ulong n)
        {
            // Frames that continue the previous run (a sweep over mappings made in order from one populated buffer)
            // join it: one pin-map descent for all of them.
            if (_pins > 0 && owner._pinBatch[_pins - 1].First + owner._pinBatch[_pins - 1].Count == pf)
            {
                owner._pinBatch[_pins - 1].Count += n;
            }
            else
            {
                if (_pins == owner._pinBatch.Length && !FlushPins())
                {
                    return false;
                }
                owner._pinBatch[_pins++] = (pf, n);
            }
            if (_frames == owner._frameFirsts.Length)
            {
                // Issue 16: a mapping of shattered memory has one run per page (16.8 M for 64 GiB, 268 MB kept in these
                // arrays). Once they hold as many runs as a bitmap of every host frame has words, the runs go into that
                // bitmap instead, marked as they come; and as soon as they hold KeptFrames where the mapping has at least
                // as many pages as the bitmap has words, since such a mapping may well have that many runs: the check
                // after the 64 GiB scenario's MAP kept its first 295 K runs and tested their pins one pin-map descent
                // each, ~90 ms of CPU against ~150 ms for the 16.5 M runs marked after them.
                ulong words = (memory.FrameCount + 63) >> 6;
                if ((ulong)_frames >= Math.Max(words, KeptFrames) || (_frames >= KeptFrames && _pages >= words))
                {
                    StartMarking((int)words);
                    _twice |= !MarkOnce(owner._frameBits, pf, pl);
                    return true;
                }
                Array.Resize(ref owner._frameFirsts, _frames * 2);
                Array.Resize(ref owner._frameLasts, _frames * 2);
            }
            if (_frames > 0 && owner._frameLasts[_frames - 1] >= pf)
            {
                _ascending = false;
            }
            owner._frameFirsts[_frames] = pf;
            owner._frameLasts[_frames] = pl;
            _frames++;
            return true;
        }

        // §2.6 for the mapping just covered: no frame reached twice (frames in ascending order cannot be; otherwise
        // each frame is marked once in a bitmap, or the runs are sorted once). Frames shared only on reserved pages
        // would be allowed by the full check: "suspect" either way.
        // Issue 16: once per mapping of the full sweep, where a mapping of one translation (each of 65,535 single-page
        // ones) is charged once by construction: that answer inline, the rest a call.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly bool ChargedOnce() => (!_marking && (_ascending || _frames < 2)) || ChargedOnceSlow();

        [MethodImpl(MethodImplOptions.NoInlining)]
        private readonly bool ChargedOnceSlow()
        {
            if (_marking)
            {
                // Issue 16: every frame the runs reach holds a pin, read in frame order, 64 frames to a word of the
                // bitmap (PhysicalMemory.AllMarkedPinnedForCheck) instead of one pin-map lookup per run in the runs'
                // scattered order: the check after the 64 GiB scenario's MAP (16.8 M one-page runs) spent ~48 ns a run,
                // most of it a cache miss into the pin counts per run. The runs kept before the switch were queued for
                // the per-run test as well; the marked ones are all tested here.
                return !_twice && memory.AllMarkedPinnedForCheck(owner._frameBits.AsSpan(0, _markWords), out owner._hostPins);
            }
            if (_ascending || _frames < 2)
            {
                return true;
            }
            ReadOnlySpan<ulong> firsts = owner._frameFirsts.AsSpan(0, _frames);
            ReadOnlySpan<ulong> lasts = owner._frameLasts.AsSpan(0, _frames);
            ulong min = ulong.MaxValue;
            ulong max = 0;
            for (int i = 0; i < firsts.Length; i++)
            {
                min = Math.Min(min, firsts[i]);
                max = Math.Max(max, lasts[i]);
            }
            // Issue 16: sorting many runs of shattered memory was most of a check's time; a bitmap over the frames they
            // span is one bit test per run. Where the runs are few and far apart (huge pages over a large host) the
            // bitmap would be the larger cost, so it is used only while it needs no more words than there are runs.
            ulong words = ((max - min) >> 6) + 1;
            return words <= (ulong)_frames ? MarkedOnce(firsts, lasts, min, (int)words) : SortedApart();
        }

        private readonly bool SortedApart()
        {
            Array.Sort(owner._frameFirsts, owner._frameLasts, 0, _frames);
            for (int i = 1; i < _frames; i++)
            {
                if (owner._frameFirsts[i] <= owner._frameLasts[i - 1])
                {
                    return false;
                }
            }
            return true;
        }

        // From here on the mapping's runs are marked in a bitmap of every host frame, the runs kept so far first.
        private void StartMarking(int words)
        {
            Span<ulong> bits = ClearedBits(words);
            for (int i = 0; i < _frames; i++)
            {
                _twice |= !MarkOnce(bits, owner._frameFirsts[i], owner._frameLasts[i]);
            }
            _frames = 0;
            _marking = true;
            _markWords = words;
        }

        private readonly bool MarkedOnce(ReadOnlySpan<ulong> firsts, ReadOnlySpan<ulong> lasts, ulong min, int words)
        {
            Span<ulong> bits = ClearedBits(words);
            for (int i = 0; i < firsts.Length; i++)
            {
                if (!MarkOnce(bits, firsts[i] - min, lasts[i] - min))
                {
                    return false;
                }
            }
            return true;
        }

        // The checker's bitmap (kept until it trims), its first words cleared.
        private readonly Span<ulong> ClearedBits(int words)
        {
            if (owner._frameBits is not { } bits || bits.Length < words)
            {
                owner._frameBits = bits = new ulong[words];
            }
            else
            {
                bits.AsSpan(0, words).Clear();
            }
            return bits.AsSpan(0, words);
        }

        // Sets bits [first, last]; false when one of them was set already (a frame reached twice).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool MarkOnce(Span<ulong> bits, ulong first, ulong last)
        {
            int w = (int)(first >> 6);
            int wl = (int)(last >> 6);
            ulong mask = ulong.MaxValue << (int)(first & 63);
            bool once = true;
            for (; w <= wl; w++, mask = ulong.MaxValue)
            {
                if (w == wl)
                {
                    mask &= ulong.MaxValue >> (63 - (int)(last & 63));
                }
                once &= (bits[w] & mask) == 0;
                bits[w] |= mask;
            }
            return once;
        }

        /// <summary>Tests the queued frame runs: true when every frame holds a pin. Reads the host's pins outstanding in
        /// the same lock round trip (<see cref="_hostPins"/>).</summary>
        public bool FlushPins()
        {
            bool all = memory.AllPinnedForCheck(owner._pinBatch.AsSpan(0, _pins), out owner._hostPins);
            _pins = 0;
            return all;
        }
    }

    /// <summary>Hands the page table's runs to <see cref="FramePass"/>'s <see cref="FramePass.Cover"/> as they are read;
    /// stops at the first that does not continue the mapping soundly, or at the mapping's last IOVA.</summary>
    private ref struct CoverVisitor(ref FramePass pass) : IPackedRunVisitor<IopteRun>
    {
        private readonly ref FramePass _pass = ref pass;

        /// <summary>False once a run did not continue the mapping soundly.</summary>
        public bool Sound { get; private set; } = true;

        public bool Visit(ulong start, ulong last, IopteRun value)
        {
            if (!_pass.TakeRun(start, last, value))
            {
                Sound = false;
                return false;
            }
            return !_pass.Covered;
        }

        public bool VisitPacked(ulong start, ulong unit, ReadOnlySpan<ulong> packed)
        {
            if (!_pass.TakePacked(start, unit, packed))
            {
                Sound = false;
                return false;
            }
            return !_pass.Covered;
        }
    }
}
