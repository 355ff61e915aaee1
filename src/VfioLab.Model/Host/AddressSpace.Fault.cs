using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

// Page faults (handle_mm_fault) over ranges of pages, so cost follows runs: a read of untouched private
// anonymous memory maps the shared zero frame read-only (one constant PTE run however long), a write
// allocates a frame (copying away from the zero frame, or from a page shared since fork); shared and
// hugetlb pages come from their backing object (hugetlb has no zero page); driver PFNMAP pages come from
// the driver's fault handler.
internal sealed partial class AddressSpace
{
    /// <summary>Faults in <paramref name="count"/> pages of <paramref name="vma"/> from
    /// <paramref name="firstPage"/> (widened to whole huge pages), breaking COW when
    /// <paramref name="write"/>. Needs the mmap lock.</summary>
    public VmFaultResult FaultRangeLocked(Vma vma, ulong firstPage, ulong count, bool write) =>
        FaultRangeLocked(vma, firstPage, count, write ? FaultMode.Write : FaultMode.Read);

    /// <summary>Faults in <paramref name="count"/> pages of <paramref name="vma"/> from <paramref name="firstPage"/>
    /// (widened to whole huge pages) as <paramref name="mode"/> asks of private memory. Needs the mmap lock.</summary>
    internal VmFaultResult FaultRangeLocked(Vma vma, ulong firstPage, ulong count, FaultMode mode)
    {
        AssertMmapLocked();
        bool write = mode == FaultMode.Write;
        if (write ? !vma.IsWritable : !vma.IsReadable)
        {
            return VmFaultResult.SegV;
        }
        ulong g = vma.HugePages;
        ulong first = firstPage & ~(g - 1);
        ulong last = ((firstPage + count - 1) | (g - 1));
        VmFaultResult result = vma.Kind switch
        {
            VmaKind.Anonymous => FaultPrivateLocked(vma, first, last, mode),
            VmaKind.HugeTlb when vma.PtesHoldRefs => FaultPrivateLocked(vma, first, last, mode),
            VmaKind.HugeTlb or VmaKind.SharedAnonymous => FaultSharedLocked(vma, first, last),
            VmaKind.DevicePfnMap => FaultDriverLocked(vma, first, last, write),
            _ => AllPresentLocked(first, last) ? VmFaultResult.Ok : VmFaultResult.SigBus,
        };
        if (Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Fault, OwnerPid, TraceLog.F("vaddr", first << PageShift), TraceLog.F("pages", last - first + 1),
                TraceLog.F("write", write), TraceLog.F("result", result.ToString()));
        }
        return result;
    }

    /// <summary>fixup_user_fault: faults in the page at <paramref name="address"/> as GUP's fallback does.
    /// Returns EFAULT for no VMA, a protection violation or SIGBUS, ENOMEM when frames ran out.</summary>
    public Errno FixupUserFaultLocked(HostVirtAddr address, bool write)
    {
        _mmapLock.AssertHeld();
        Vma? vma = FindVmaLocked(address);
        if (vma is null)
        {
            return Refusals.Refuse(Errno.EFAULT, "fixup_user_fault", "no VMA maps vaddr 0x{0:x}", address.Value);
        }
        return FaultRangeLocked(vma, address.Value >> PageShift, 1, write) switch
        {
            VmFaultResult.Ok => Errno.None,
            VmFaultResult.Oom => Refusals.Refuse(Errno.ENOMEM, "fixup_user_fault", "no free frame to fault in vaddr 0x{0:x}", address.Value),
            _ => Refusals.Refuse(Errno.EFAULT, "fixup_user_fault", "the fault at vaddr 0x{0:x} failed", address.Value),
        };
    }

    /// <summary>follow_pfnmap_start: walks the page table of a VM_PFNMAP/VM_IO <paramref name="vma"/> at
    /// <paramref name="address"/>. False when the page is not present (fault it with
    /// <see cref="FixupUserFaultLocked"/> and walk again) or the VMA is not PFNMAP.</summary>
    public bool TryFollowPfnmapLocked(Vma vma, HostVirtAddr address, out PfnmapEntry entry)
    {
        AssertMmapLocked();
        entry = default;
        ulong page = address.Value >> PageShift;
        if (!vma.IsPfnMapOrIo || page < vma.StartPage || page > vma.LastPage)
        {
            return false;
        }
        Run<Pte> run;
        using (_ptGate.EnterScope())
        {
            if (!_pageTable.TryGet(page, out run))
            {
                return false;
            }
        }
        Pte pte = run.ValueAt(page);
        ulong block = 1;
        if (vma.HugePfnMap)
        {
            int levelBits = PageShift - 3;
            for (int level = 2; level >= 1 && block == 1; level--)
            {
                ulong frames = 1UL << (levelBits * level);
                ulong vstart = page & ~(frames - 1);
                if (vstart >= vma.StartPage && vstart + frames - 1 <= vma.LastPage && vstart >= run.Start &&
                    vstart + frames - 1 <= run.Last && (run.ValueAt(vstart).Pfn.Value & (frames - 1)) == 0)
                {
                    block = frames - (page - vstart);
                }
            }
        }
        entry = new PfnmapEntry(pte.Pfn, pte.Writable, block, _memory.IsReservedOrInvalid(pte.Pfn));
        return true;
    }

    private VmFaultResult FaultPrivateLocked(Vma vma, ulong first, ulong last, FaultMode mode)
    {
        _mmapLock.AssertHeld();
        ulong g = vma.HugePages;
        // do_anonymous_page maps the zero page for a read of a 4 KiB-page anonymous hole (hugetlb has none).
        bool zeroHoles = g == 1 && vma.Kind == VmaKind.Anonymous && mode is FaultMode.Read or FaultMode.UnshareKeepZero;
        bool leaveZero = mode is FaultMode.Read or FaultMode.UnshareKeepZero;
        bool breakCow = mode == FaultMode.Write || (mode != FaultMode.Read && vma.IsWritable);
        using (_ptGate.EnterScope())
        {
            ulong p = first;
            while (p <= last)
            {
                if (_pageTable.TryGet(p, out Run<Pte> present))
                {
                    ulong end = Math.Min(present.Last, last);
                    Pte pte = present.ValueAt(p);
                    VmFaultResult r = VmFaultResult.Ok;
                    if (pte.ZeroPage && !leaveZero)
                    {
                        r = MapFreshLocked(vma, p, end);
                    }
                    else if (!pte.ZeroPage && breakCow && !pte.Writable)
                    {
                        r = BreakCowLocked(vma, p, end - p + 1, pte.Pfn);
                    }
                    if (r != VmFaultResult.Ok)
                    {
                        return r;
                    }
                    p = end + 1;
                    continue;
                }
                ulong gapEnd = _pageTable.TryGetAtOrAfter(p, out Run<Pte> next) && next.Start <= last ? next.Start - 1 : last;
                if (zeroHoles)
                {
                    if (!_memory.TryGetZeroFrame(out Pfn zero))
                    {
                        return VmFaultResult.Oom;
                    }
                    _pageTable.Set(p, gapEnd, Pte.Zero(zero));
                    p = gapEnd + 1;
                    continue;
                }
                VmFaultResult filled = MapFreshLocked(vma, p, gapEnd);
                if (filled != VmFaultResult.Ok)
                {
                    return filled;
                }
                p = gapEnd + 1;
            }
        }
        return VmFaultResult.Ok;
    }

    // Maps fresh frames (zeroed: a freed frame loses its contents) over [p, last], replacing whatever PTEs are
    // there, which hold no frame reference (holes and zero-frame pages): whole huge pages for hugetlb. Small pages are
    // allocated a batch of runs at a time (PhysicalMemory.AllocateRuns: the runs one TryAllocateRun after another would
    // give, under one lock acquisition) and a hole's PTEs inserted a batch at a time in address order
    // (RunMap.InsertSorted, the tree one Set per run leaves): on memory shattered into 1-page runs a populate allocates
    // and maps a run per page, and a lock round trip and a descent per page were a good part of it (issue 16).
    private VmFaultResult MapFreshLocked(Vma vma, ulong p, ulong last)
    {
        _ptGate.AssertHeld();
        ulong g = vma.HugePages;
        if (g == 1)
        {
            return MapFreshSmallLocked(p, last, vma.IsWritable);
        }
        while (p <= last)
        {
            if (!_memory.TryAllocateHuge(g, out Pfn block))
            {
                return VmFaultResult.SigBus;
            }
            _pageTable.Set(p, p + g - 1, new Pte(block, vma.IsWritable));
            p += g;
        }
        return VmFaultResult.Ok;
    }

    private VmFaultResult MapFreshSmallLocked(ulong p, ulong last, bool writable)
    {
        const int Batch = 64;
        var sink = new PteSink(_pageTable, p, writable, !_pageTable.Overlaps(p, last), stackalloc Run<Pte>[Batch]);
        bool failed;
        while (true)
        {
            _memory.AllocateRuns(last - sink.Next + 1, ref sink, out failed);
            sink.Flush();
            if (failed || sink.Next > last)
            {
                break;
            }
        }
        return failed ? VmFaultResult.Oom : VmFaultResult.Ok;
    }

    // The PTEs of a populate's fresh frames from p on, written a batch at a time as the allocator hands out the runs: into
    // a hole with one sorted insert per batch, over zero-frame PTEs one Set per run.
    private ref struct PteSink(RunMap<Pte> table, ulong p, bool writable, bool hole, Span<Run<Pte>> buffer) : IFrameRunSink
    {
        private readonly Span<Run<Pte>> _buffer = buffer;
        private int _n;

        // The virtual page the next run maps.
        public ulong Next { get; private set; } = p;

        public readonly int Room => int.MaxValue;

        public void Add(PfnRun run)
        {
            _buffer[_n++] = new Run<Pte>(Next, Next + run.Count - 1, new Pte(run.First, writable));
            Next += run.Count;
            if (_n == _buffer.Length)
            {
                Flush();
            }
        }

        public void Flush()
        {
            if (_n == 0)
            {
                return;
            }
            if (hole)
            {
                table.InsertSorted(_buffer[.._n]);
            }
            else
            {
                foreach (Run<Pte> pte in _buffer[.._n])
                {
                    table.Set(pte.Start, pte.Last, pte.Value);
                }
            }
            _n = 0;
        }
    }

    // do_wp_page over a run: frames only this PTE references become writable in place; shared ones are
    // copied (whole huge pages for hugetlb) and the old reference dropped.
    private VmFaultResult BreakCowLocked(Vma vma, ulong page, ulong count, Pfn pfn)
    {
        _ptGate.AssertHeld();
        ulong g = vma.HugePages;
        ulong off = 0;
        while (off < count)
        {
            Pfn src = pfn.Plus(off);
            ulong unit = g > 1 ? g : count - off;
            ulong len = _memory.ExclusivePrefix(src, unit, out bool exclusive);
            if (exclusive && len >= unit && g > 1)
            {
                len = g;
            }
            else if (g > 1)
            {
                exclusive = false;
                len = g;
            }
            if (exclusive)
            {
                _pageTable.Set(page + off, page + off + len - 1, new Pte(src, true));
                off += len;
                continue;
            }
            PfnRun copy;
            if (g > 1)
            {
                if (!_memory.TryAllocateHuge(g, out Pfn block))
                {
                    return VmFaultResult.SigBus;
                }
                copy = new PfnRun(block, g);
            }
            else if (!_memory.TryAllocateRun(len, out copy))
            {
                return VmFaultResult.Oom;
            }
            _memory.CopyFrames(src, copy.First, copy.Count);
            _pageTable.Set(page + off, page + off + copy.Count - 1, new Pte(copy.First, true));
            _memory.DropRefs(new PfnRun(src, copy.Count));
            off += copy.Count;
        }
        return VmFaultResult.Ok;
    }

    private VmFaultResult FaultSharedLocked(Vma vma, ulong first, ulong last)
    {
        _mmapLock.AssertHeld();
        SharedBacking backing = vma.Backing!;
        using (_ptGate.EnterScope())
        {
            ulong p = first;
            while (p <= last)
            {
                if (_pageTable.TryGet(p, out Run<Pte> present))
                {
                    p = Math.Min(present.Last, last) + 1;
                    continue;
                }
                ulong gapEnd = _pageTable.TryGetAtOrAfter(p, out Run<Pte> next) && next.Start <= last ? next.Start - 1 : last;
                while (p <= gapEnd)
                {
                    if (!backing.TryGetOrAllocate(vma.PgoffOf(p), gapEnd - p + 1, out PfnRun run))
                    {
                        return vma.Kind == VmaKind.HugeTlb ? VmFaultResult.SigBus : VmFaultResult.Oom;
                    }
                    _pageTable.Set(p, p + run.Count - 1, new Pte(run.First, vma.IsWritable));
                    p += run.Count;
                }
            }
        }
        return VmFaultResult.Ok;
    }

    private VmFaultResult FaultDriverLocked(Vma vma, ulong first, ulong last, bool write)
    {
        _mmapLock.AssertHeld();
        ulong p = first;
        while (p <= last)
        {
            Run<Pte> present;
            bool isPresent;
            using (_ptGate.EnterScope())
            {
                isPresent = _pageTable.TryGet(p, out present);
            }
            if (isPresent && (!write || present.Value.Writable))
            {
                p = Math.Min(present.Last, last) + 1;
                continue;
            }
            if (vma.Operations is null)
            {
                return VmFaultResult.SigBus;
            }
            VmFaultResult r = vma.Operations.Fault(vma, new HostVirtAddr(p << PageShift), write);
            if (r != VmFaultResult.Ok)
            {
                return r;
            }
            using (_ptGate.EnterScope())
            {
                if (!_pageTable.TryGet(p, out present) || (write && !present.Value.Writable))
                {
                    return VmFaultResult.SigBus;
                }
            }
        }
        return VmFaultResult.Ok;
    }

    /// <summary>Pins the frames of the present pages from <paramref name="page"/> on, up to
    /// <paramref name="count"/> pages, stopping at the first page that is not present (or not writable
    /// when <paramref name="requireWritable"/>, or the zero frame unless <paramref name="acceptZero"/>), and appends
    /// them to <paramref name="runs"/>, extending the last run when physically contiguous. The zero frame takes one
    /// entry per page (the same frame again is no continuation) and no pin (see <see cref="PhysicalMemory.ZeroFrame"/>).
    /// <paramref name="runsFull"/> tells that it stopped because <paramref name="runs"/> had no room for a
    /// discontinuity. Walks the page table's runs in order, then pins what it found in one call
    /// (<see cref="PhysicalMemory.PinRuns"/>): on memory shattered into 1-page runs a lock round trip per page-table
    /// run was a good part of a pin's cost (issue 16). Nothing runs between the walk and the pins (both under the mmap
    /// lock and the page-table lock), so the frames pinned are the ones the walk found.</summary>
    internal ulong PinPresentLocked(ulong page, ulong count, bool requireWritable, bool acceptZero, Span<PfnRun> runs, ref int runCount,
        out bool runsFull)
    {
        AssertMmapLocked();
        ulong pinned = 0;
        runsFull = false;
        if (count == 0)
        {
            return 0;
        }
        int from = runCount;
        using (_ptGate.EnterScope())
        {
            // The page table's runs read straight from its leaves (RunMap.Visit): on memory shattered into 1-page runs a
            // run is a page, and the enumerator's MoveNext per run was most of this walk (issue 16; docs/benchmarks.md,
            // 2026-12-07 "onepage3").
            var walk = new PinWalk(runs, runCount, page, requireWritable, acceptZero, _memory);
            _pageTable.Visit(page, page + count - 1, ref walk);
            runCount = walk.RunCount;
            pinned = walk.Pinned;
            runsFull = walk.RunsFull;
            if (walk.Extended != 0)
            {
                PfnRun head = runs[from - 1];
                _memory.Pin(head.First.Plus(head.Count - walk.Extended), walk.Extended);
            }
            _memory.PinRuns(runs[from..runCount]);
        }
        return pinned;
    }

    /// <summary><see cref="PinPresentLocked"/> of one page when it is present, not the zero frame's PTE, and writable where
    /// <paramref name="requireWritable"/>: pins its frame and answers true; otherwise changes nothing and answers false
    /// (the caller then walks as before). One PTE read instead of the page table's visitor (GUP's one-page lane).</summary>
    internal bool TryPinPresentPageLocked(ulong page, bool requireWritable, out Pfn pfn)
    {
        AssertMmapLocked();
        using (_ptGate.EnterScope())
        {
            // The shared zero frame, which PinRuns would leave unpinned, is left to the walk with the zero PTE.
            if (!_pageTable.TryGetValue(page, out Pte pte) || pte.ZeroPage || (requireWritable && !pte.Writable) || _memory.IsZeroFrame(pte.Pfn))
            {
                pfn = default;
                return false;
            }
            pfn = pte.Pfn;
            // The one-frame pin, not PinRuns of one run: the batch branch of PinRuns, inlined here, gave this path more
            // locals to zero on every call.
            _memory.Pin(pfn, 1);
            return true;
        }
    }

    // PinPresentLocked's walk over the page table's runs from `page` on: each present page (writable where required, the
    // zero frame only where accepted) appended to `runs` as a frame run, extending the last run when physically
    // contiguous (the zero frame takes an entry per page and continues nothing); stops at the first page that is not
    // ready, or when `runs` has no room for a discontinuity (RunsFull). Extended: pages appended to the run that was last
    // on entry.
    private ref struct PinWalk(Span<PfnRun> runs, int runCount, ulong page, bool requireWritable, bool acceptZero, PhysicalMemory memory)
        : IRunVisitor<Pte>
    {
        private readonly Span<PfnRun> _runs = runs;
        private readonly int _from = runCount;
        public int RunCount = runCount;
        public ulong Pinned;
        public bool RunsFull;
        public ulong Extended;

        // Inlined into the walk: called once per page on shattered memory.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool Visit(ulong start, ulong last, Pte value)
        {
            if (start != page + Pinned || (value.ZeroPage ? !acceptZero : requireWritable && !value.Writable))
            {
                return false;
            }
            Pfn pfn = value.Pfn;
            ulong n = last - start + 1;
            if (value.ZeroPage)
            {
                ulong k = Math.Min(n, (ulong)(_runs.Length - RunCount));
                for (ulong i = 0; i < k; i++)
                {
                    _runs[RunCount++] = new PfnRun(pfn, 1);
                }
                Pinned += k;
                if (k < n)
                {
                    RunsFull = true;
                    return false;
                }
                return true;
            }
            if (RunCount > 0 && _runs[RunCount - 1].First.Value + _runs[RunCount - 1].Count == pfn.Value && !memory.IsZeroFrame(_runs[RunCount - 1].First))
            {
                _runs[RunCount - 1] = _runs[RunCount - 1] with { Count = _runs[RunCount - 1].Count + n };
                if (RunCount == _from)
                {
                    Extended += n;
                }
            }
            else if (RunCount < _runs.Length)
            {
                _runs[RunCount++] = new PfnRun(pfn, n);
            }
            else
            {
                RunsFull = true;
                return false;
            }
            Pinned += n;
            return true;
        }
    }

    private bool AllPresentLocked(ulong first, ulong last)
    {
        _mmapLock.AssertHeld();
        using (_ptGate.EnterScope())
        {
            return _pageTable.Covers(first, last);
        }
    }
}
