using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>Unmapping and deferred IOTLB invalidation of <see cref="IommuDomain"/>
/// (<c>iommu_unmap</c>, <c>iommu_unmap_fast</c>, <c>iommu_iotlb_sync</c>).</summary>
internal sealed partial class IommuDomain
{
    /// <summary>
    /// <c>iommu_unmap(domain, iova, size)</c> with a synchronous IOTLB flush: removes whole IOPTEs from
    /// <paramref name="iova"/> on until at least <paramref name="size"/> bytes are counted. An IOPTE
    /// larger than what is asked, or one <paramref name="iova"/> starts inside, is removed whole and
    /// counted whole: modern drivers never split a large IOPTE (spec §3.4). Like the core's loop, it
    /// stops at the first hole. Never fails.
    /// </summary>
    /// <returns>Bytes unmapped, possibly more than <paramref name="size"/>; 0 when iova or size is
    /// not a multiple of the minimum page size (the core WARNs and returns 0), or when
    /// <paramref name="iova"/> is a hole.</returns>
    public ulong Unmap(Iova iova, ulong size)
    {
        using (_lock.EnterScope())
        {
            return UnmapLocked(iova, size, deferred: false, recordPending: false);
        }
    }

    /// <summary>
    /// <c>iommu_unmap_fast</c>: as <see cref="Unmap"/>, but the IOTLB invalidation is deferred to
    /// <see cref="IotlbSync"/>. Until then the physical ranges of the removed IOPTEs are pending
    /// invalidation: a device may still hold cached translations to them, so their pages must not be
    /// unpinned yet (type1's "unpin only after flush", spec §3.5; invariant <c>unpin-after-flush</c>).
    /// </summary>
    /// <returns>Bytes unmapped, as <see cref="Unmap"/>.</returns>
    public ulong UnmapDeferred(Iova iova, ulong size)
    {
        using (_lock.EnterScope())
        {
            return UnmapLocked(iova, size, deferred: true, recordPending: true);
        }
    }

    /// <summary>
    /// The whole of one domain's part in <c>vfio_unmap_unpin</c>, in one hold of the domain's lock: collects the IOPTE
    /// runs overlapping <paramref name="range"/> into <paramref name="into"/> (what the caller unpins afterwards),
    /// removes them stretch by stretch as <see cref="UnmapDeferred"/> would (a hole splits the range, as the kernel's
    /// page walk skips it), then <see cref="IotlbSync"/>; at most <paramref name="max"/> runs (type1's streamed unmap),
    /// and no flush when the range held none. The same result and trace as those calls one by one, with one lock round
    /// trip instead of three or more (issue 16's 4 KiB pair).
    /// </summary>
    public void CollectUnmapSync(ByteRange range, List<MappedRun> into, int max = int.MaxValue)
    {
        using (_lock.EnterScope())
        {
            int from = into.Count;
            if (max > 0 && !Trace.Enabled && TryUnmapWholeRunLocked(range, out IopteRun whole))
            {
                // The range is one whole IOPTE run (a 4 KiB unmap; any mapping that is one run): it is the only run
                // collected. Not while tracing (UnmapLocked's event).
                into.Add(new MappedRun(range, whole.Phys, whole.PageSize, whole.Prot));
                return;
            }
            foreach (Run<IopteRun> run in _table.Overlapping(range.Start, range.Last))
            {
                if (into.Count - from == max)
                {
                    break;
                }
                into.Add(new MappedRun(new ByteRange(run.Start, run.Last), run.Value.Phys, run.Value.PageSize, run.Value.Prot));
            }
            if (into.Count == from)
            {
                // Nothing left in the range (a streamed unmap's last look found a hole): nothing to flush.
                return;
            }
            if (!Trace.Enabled && StartsAtRun(range.Start))
            {
                RemoveCollectedLocked(range, into, from);
            }
            else
            {
                UnmapCollectedLocked(into, from);
            }
            _pending.Clear();
            CountIotlbSyncLocked();
        }
        if (Trace.Enabled)
        {
            Trace.Emit(TraceKind.IommuIotlbSync, 0, TraceLog.F("domain", Name));
        }
    }

    // Takes out the IOPTE run whose bounds are exactly `range` (a 4 KiB unmap; any mapping that is one run), with
    // its entry count and the flush, as the general walk would: in one descent instead of three (the walk,
    // StartsAtRun's lookup, the removal), without the general removal's merge handling (RunMap.TryRemoveExactOne). No pending
    // range is recorded: the flush here clears them. False, with nothing changed, when no run has those bounds.
    private bool TryUnmapWholeRunLocked(ByteRange range, out IopteRun whole)
    {
        if (!_table.TryRemoveExactOne(range.Start, range.Last, out whole))
        {
            return false;
        }
        SubtractCount(whole.PageSize, ((range.Last - range.Start) >> System.Numerics.BitOperations.TrailingZeroCount(whole.PageSize)) + 1);
        _pending.Clear();
        CountIotlbSyncLocked();
        return true;
    }

    /// <summary>
    /// <see cref="TryUnmapSyncStreamed"/>'s first case on its own, for type1's one-run unmap (every 4 KiB UNMAP_DMA):
    /// the IOPTE run whose bounds are exactly <paramref name="range"/> leaves the table with its entry count and the
    /// flush, and its physical start comes back in <paramref name="phys"/>, with no sink, batch bound or cursor to carry.
    /// False, with nothing done, while tracing or when no run has exactly those bounds: the caller then takes the
    /// streamed path, which ends the same for those.
    /// </summary>
    public bool TryUnmapOneRunSync(ByteRange range, out PhysAddr phys)
    {
        using (_lock.EnterScope())
        {
            if (!Trace.Enabled && TryUnmapWholeRunLocked(range, out IopteRun whole))
            {
                phys = whole.Phys;
                return true;
            }
        }
        phys = default;
        return false;
    }

    /// <summary>
    /// <see cref="CollectUnmapSync"/>'s fast lane for type1's streamed unmap: the same runs leave the table (at most
    /// <paramref name="max"/> from <paramref name="range"/>'s start, the last one rounded up to a whole IOPTE), the same
    /// counts, the same flush (none when the range held no run), but each run goes to <paramref name="sink"/> as it is
    /// read from the table's leaves (<see cref="RunMap{T}.Visit"/>) instead of into a list of <see cref="MappedRun"/>
    /// walked twice more, and the runs leave the table in one removal. On memory shattered into 1-page runs an UNMAP
    /// reads a run per page, and the list, its second walk and the enumerator were about a sixth of a 1-page-run UNMAP
    /// (issue 16; docs/benchmarks.md, 2026-12-07 "onepage3"). <paramref name="taken"/> runs were taken, the last ending
    /// at <paramref name="lastIova"/>. False, with nothing done, where the result could differ from
    /// <see cref="CollectUnmapSync"/>'s: while tracing (its per-stretch events), and where a run straddles the range's
    /// start (its walk then takes whole IOPTEs from before the range); the caller then takes that path. The sink is
    /// called under the domain's lock and must take no lock.
    /// </summary>
    public bool TryUnmapSyncStreamed<TSink>(ByteRange range, int max, ref TSink sink, out int taken, out ulong lastIova)
        where TSink : struct, IUnmappedRunSink
    {
        taken = 0;
        lastIova = 0;
        using (_lock.EnterScope())
        {
            if (max <= 0 || Trace.Enabled)
            {
                return false;
            }
            if (TryUnmapWholeRunLocked(range, out IopteRun whole))
            {
                // The range is one whole IOPTE run (every 4 KiB unmap), as CollectUnmapSync's same path.
                sink.Take(range.Start, range.Last, whole.Phys);
                taken = 1;
                lastIova = range.Last;
                return true;
            }
            if (!StartsAtRun(range.Start))
            {
                return false;
            }
            var visitor = new StreamVisitor<TSink>(this, sink, max);
            _table.Visit(range.Start, range.Last, ref visitor);
            sink = visitor.Sink;
            taken = visitor.Taken;
            if (taken == 0)
            {
                // Nothing left in the range: nothing to flush, as CollectUnmapSync.
                return true;
            }
            visitor.FlushCount();
            lastIova = visitor.LastIova;
            // Every run from the range's start to the last one taken leaves (holes between them hold nothing), up to the
            // IOPTE that holds the last one's end: what RemoveCollectedLocked's per-stretch removals leave.
            _table.Remove(range.Start, visitor.RemoveLast);
            _pending.Clear();
            CountIotlbSyncLocked();
            return true;
        }
    }

    // The runs of TryUnmapSyncStreamed: each counted off its page size (one SubtractCount per change of size, not per
    // run), handed to the sink, and the walk stopped at the max-th.
    private struct StreamVisitor<TSink>(IommuDomain domain, TSink sink, int max) : IRunVisitor<IopteRun>
        where TSink : struct, IUnmappedRunSink
    {
        public TSink Sink = sink;
        public int Taken;
        public ulong LastIova;
        public ulong RemoveLast;
        private int _shift = -1;
        private ulong _entries;

        // Inlined into the walk: called once per page on shattered memory.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool Visit(ulong start, ulong last, IopteRun value)
        {
            ulong p = value.PageSize;
            int shift = System.Numerics.BitOperations.TrailingZeroCount(p);
            ulong entries = ((last - start) >> shift) + 1;
            if (shift != _shift)
            {
                FlushCount();
                _shift = shift;
            }
            _entries += entries;
            LastIova = last;
            // A run cut by the range's end keeps its IOPTEs past the one holding it; a whole run ends on an IOPTE boundary.
            RemoveLast = start + (((last - start) >> shift) << shift) + (p - 1);
            Sink.Take(start, last, value.Phys);
            return ++Taken < max;
        }

        public void FlushCount()
        {
            if (_entries != 0)
            {
                domain.SubtractCount(1UL << _shift, _entries);
                _entries = 0;
            }
        }
    }

    // Whether no IOPTE run straddles key (key is a run's start or a hole): then the runs collected from key on are
    // whole except the last, which the range's end may cut.
    private bool StartsAtRun(ulong key) => !_table.TryGet(key, out Run<IopteRun> run) || run.Start == key;

    // The collected runs from index `from` on (clipped to `range`, whose start no run straddles) leave the table as
    // UnmapLocked of each stretch of back-to-back runs would take them, without walking them again (issue 16: on memory
    // shattered into pages that second walk, with its per-run arithmetic, was a third of the domain's unmap): every
    // run but a stretch's last is whole, so its IOPTEs all go; the last goes up to the IOPTE that holds the range's end,
    // as UnmapLocked rounds a partial IOPTE up. Only when not tracing (UnmapLocked emits an event per stretch).
    private void RemoveCollectedLocked(ByteRange range, List<MappedRun> into, int from)
    {
        System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread);
        ReadOnlySpan<MappedRun> runs = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(into)[from..];
        int k = 0;
        while (k < runs.Length)
        {
            ulong stretchStart = runs[k].Iova.Start;
            ulong removeLast;
            while (true)
            {
                MappedRun run = runs[k];
                ulong p = run.PageSize;
                int shift = System.Numerics.BitOperations.TrailingZeroCount(p);
                // A run clipped at the range's end keeps its IOPTEs past the one holding range.Last; a whole run ends on
                // an IOPTE boundary, so rounding its end up changes nothing.
                removeLast = run.Iova.Start + (((run.Iova.Last - run.Iova.Start) >> shift) << shift) + (p - 1);
                SubtractCount(p, ((run.Iova.Last - run.Iova.Start) >> shift) + 1);
                k++;
                if (k == runs.Length || run.Iova.Last == ulong.MaxValue || runs[k].Iova.Start != run.Iova.Last + 1)
                {
                    break;
                }
            }
            _table.Remove(stretchStart, removeLast);
        }
        System.Diagnostics.Debug.Assert(runs[^1].Iova.Last <= range.Last);
    }

    // Each stretch of back-to-back collected runs from index `from` on unmapped as iommu_unmap_fast would (deferred).
    private void UnmapCollectedLocked(List<MappedRun> into, int from)
    {
        System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread);
        int k = from;
        while (k < into.Count)
        {
            ByteRange stretch = into[k].Iova;
            k++;
            while (k < into.Count && stretch.IsFollowedBy(into[k].Iova))
            {
                stretch = stretch with { Last = into[k].Iova.Last };
                k++;
            }
            // No pending range is recorded: the caller's flush, in the same hold of the lock, would clear it unseen.
            UnmapLocked(new Iova(stretch.Start), stretch.Size, deferred: true, recordPending: false);
        }
    }

    /// <summary><c>iommu_iotlb_sync</c>: flushes the IOTLB; nothing is pending invalidation afterwards. Never fails.</summary>
    public void IotlbSync()
    {
        using (_lock.EnterScope())
        {
            _pending.Clear();
            CountIotlbSyncLocked();
        }
        if (Trace.Enabled)
        {
            Trace.Emit(TraceKind.IommuIotlbSync, 0, TraceLog.F("domain", Name));
        }
    }

    /// <summary>Whether any byte of the physical range is still pending IOTLB invalidation.</summary>
    public bool HasPendingInvalidation(PhysAddr start, ulong size)
    {
        if (!ByteRange.TryFromStartSize(start.Value, size, out ByteRange r))
        {
            return false;
        }
        using (_lock.EnterScope())
        {
            foreach (ByteRange p in _pending)
            {
                if (p.Overlaps(r))
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Physical ranges unmapped with <see cref="UnmapDeferred"/> and not yet flushed.</summary>
    public IReadOnlyList<ByteRange> PendingInvalidations()
    {
        using (_lock.EnterScope())
        {
            List<ByteRange> sorted = [.. _pending];
            sorted.Sort((a, b) => a.Start.CompareTo(b.Start));
            List<ByteRange> result = [];
            foreach (ByteRange r in sorted)
            {
                if (result.Count > 0 && result[^1].Last != ulong.MaxValue && result[^1].Last + 1 >= r.Start)
                {
                    result[^1] = new ByteRange(result[^1].Start, Math.Max(result[^1].Last, r.Last));
                }
                else
                {
                    result.Add(r);
                }
            }
            return result;
        }
    }

    private ulong UnmapLocked(Iova iova, ulong size, bool deferred, bool recordPending)
    {
        System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread);
        ulong min = MinPageSize;
        if (size == 0 || min == 0 || ((iova.Value | size) & (min - 1)) != 0 || !_table.TryGet(iova.Value, out Run<IopteRun> first))
        {
            return 0;
        }
        // Walk the whole IOPTEs from the one containing iova until size is covered or a hole, then
        // cut them out of the table at once (one tree operation for a range of any number of runs).
        ulong removeStart = iova.Value & ~(first.Value.PageSize - 1);
        ulong removeLast = removeStart;
        ulong unmapped = 0;
        ulong expected = removeStart;
        foreach (Run<IopteRun> run in _table.Overlapping(removeStart, ulong.MaxValue))
        {
            if (run.Start != expected)
            {
                break;
            }
            // IOPTE sizes are powers of two: shifts and masks rather than three 64-bit divisions per run (on memory
            // shattered into pages a run is a page, issue 16).
            ulong p = run.Value.PageSize;
            int shift = System.Numerics.BitOperations.TrailingZeroCount(p);
            ulong wanted = size - unmapped;
            ulong k = (wanted >> shift) + ((wanted & (p - 1)) != 0 ? 1UL : 0UL);
            ulong available = ((run.Last - run.Start) >> shift) + 1;
            k = Math.Min(k, available);
            ulong last = run.Start + ((k - 1) * p) + (p - 1);
            SubtractCount(p, k);
            if (recordPending)
            {
                _pending.Add(new ByteRange(run.Value.Phys.Value, run.Value.Phys.Value + (last - run.Start)));
            }
            unmapped += (k - 1) * p + p;
            removeLast = last;
            if (unmapped >= size || last == ulong.MaxValue)
            {
                break;
            }
            expected = last + 1;
        }
        _table.Remove(removeStart, removeLast);
        if (Trace.Enabled)
        {
            Trace.Emit(deferred ? TraceKind.IommuUnmapFast : TraceKind.IommuUnmap, 0, TraceLog.F("domain", Name),
                TraceLog.F("iova", iova.Value), TraceLog.F("size", size), TraceLog.F("unmapped", unmapped));
        }
        return unmapped;
    }
}
