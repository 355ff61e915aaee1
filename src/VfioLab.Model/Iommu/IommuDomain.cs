using System.Numerics;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>
/// A paging IOMMU domain and its page table: the kernel's <c>struct iommu_domain</c> (pgsize_bitmap,
/// geometry, ops, <c>enforce_cache_coherency</c>) together with the driver's IOPTEs, driven through
/// <c>iommu_map</c>, <c>iommu_unmap</c>, <c>iommu_unmap_fast</c> + <c>iommu_iotlb_sync</c> and
/// <c>iommu_iova_to_phys</c> (drivers/iommu/iommu.c).
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c>, a leaf lock. Callers (the type1 container lock, a device's DMA) take it
/// only through this type's methods; nothing is called out while it is held. It protects
/// <c>_table</c>, <c>_countsByShift</c>, <c>_totalEntries</c>, <c>_pending</c>, <c>_groups</c>,
/// <see cref="EnforceCacheCoherency"/>, <see cref="IsFreed"/> and the flush counter.
/// Never change: <see cref="Unit"/>, <see cref="Id"/>, <see cref="PgsizeBitmap"/>, <see cref="Aperture"/>.
/// Cost follows runs: a 1 TiB mapping on 1 GiB pages is one run and one counter update.
/// </remarks>
internal sealed partial class IommuDomain
{
    private readonly OrderedLock _lock = new(LockRank.IommuDomain);
    // Nodes of 64 (the default): on memory shattered into 1-page runs the table is one packed word per page, and
    // 32-entry nodes cost 2 B/page more of it (64 GiB: peak managed heap 34.3 -> 32.2 B/page, issue 16). Nodes of 32
    // had been chosen for the 4 KiB map/unmap in the middle of a full table, which shifts half as much; measured
    // after the intrusive DMA tree and the IOPTE batch paths, the 4 KiB pair moved within its noise (+3 %).
    // Up to 16,384 emptied packed leaves (64 pages each, ~0.6 KiB: ~10 MiB, 4 GiB of a MAP on 1-page runs) are kept for
    // the next MAP's appends: a 4 GiB MAP+UNMAP on 1-page runs dropped ~9 B/page of them, and with the pin map's emptied
    // windows (FrameCountMap) that garbage made the collector run ~2 collections a pair (gen0 and gen1, ~6 ms of pauses a
    // pair); kept, none ran in 11 pairs (issue 16; docs/benchmarks.md, 2026-12-08 "onepage10"). The bound is what a table
    // may hold beyond what it maps; a larger UNMAP lets the rest go.
    private readonly RunMap<IopteRun> _table = new() { FreeLeafLimit = TableFreeLeaves };
    private const int TableFreeLeaves = 16384;
    private readonly ulong[] _countsByShift = new ulong[64];
    // Physical ranges unmapped with deferred invalidation and not flushed yet (appended; cleared by a sync).
    private readonly List<ByteRange> _pending = [];
    private readonly List<IommuGroup> _groups = [];
    private ulong _totalEntries;
    private long _iotlbSyncs;
    // The IOPTE runs of one MapChunks batch before they go into the table together (TryMapChunksInOrder); a GUP batch
    // is at most 512 chunks, each one run on shattered memory.
    private const int MapRunsKeep = 1024;
    private Run<IopteRun>[] _mapRuns = [];

    internal IommuDomain(IommuUnit unit, int id)
    {
        Unit = unit;
        Id = id;
        PgsizeBitmap = unit.Profile.PgsizeBitmap;
        Aperture = unit.Profile.Aperture;
    }

    /// <summary>The IOMMU instance the domain was allocated for.</summary>
    public IommuUnit Unit { get; }

    /// <summary>Unit-unique domain number.</summary>
    public int Id { get; }

    /// <summary>Name for messages and traces: <c>vt-d#0/d1</c>.</summary>
    public string Name => $"{Unit.Name}/d{Id}";

    /// <summary>Identity of the driver ops (<c>domain-&gt;ops</c>); type1 reuses a domain only with equal ops.</summary>
    public string OpsName => Unit.Profile.OpsName;

    /// <summary>Supported IOPTE sizes (<c>domain-&gt;pgsize_bitmap</c>).</summary>
    public ulong PgsizeBitmap { get; }

    /// <summary>The smallest IOPTE size: the alignment <see cref="Map"/> and <see cref="Unmap"/> require.</summary>
    public ulong MinPageSize => PageSizeBitmap.MinPageSize(PgsizeBitmap);

    /// <summary>The translatable IOVA range (<c>domain-&gt;geometry</c>).</summary>
    public ByteRange Aperture { get; }

    /// <summary>Whether the <c>enforce_cache_coherency</c> op can succeed on this domain's hardware.</summary>
    public bool CanEnforceCacheCoherency => Unit.Profile.CanEnforceCacheCoherency;

    /// <summary>Whether no-snoop DMA is blocked (set by <see cref="TryEnforceCacheCoherency"/>).</summary>
    public bool EnforceCacheCoherency
    {
        get { using (_lock.EnterScope()) { return _enforceCacheCoherency; } }
    }

    private bool _enforceCacheCoherency;

    /// <summary>Whether <see cref="Free"/> ran.</summary>
    public bool IsFreed { get; private set; }

    /// <summary>Number of leaf IOPTEs of every size (maintained incrementally).</summary>
    public ulong TotalEntries
    {
        get { using (_lock.EnterScope()) { return _totalEntries; } }
    }

    /// <summary>Number of page-table runs (the model's cost measure).</summary>
    public int RunCount
    {
        get { using (_lock.EnterScope()) { return _table.Count; } }
    }

    /// <summary>Whether the page table holds no IOPTE.</summary>
    public bool IsEmpty
    {
        get { using (_lock.EnterScope()) { return _table.IsEmpty; } }
    }

    /// <summary>Number of <see cref="IotlbSync"/> calls so far.</summary>
    public long IotlbSyncCount => Volatile.Read(ref _iotlbSyncs);

    // Every flush counts under the domain's lock, so no atomic read-modify-write is needed (one fewer per UNMAP, issue
    // 16's 4 KiB pair); readers outside the lock see a whole 64-bit value.
    private void CountIotlbSyncLocked() => Volatile.Write(ref _iotlbSyncs, _iotlbSyncs + 1);

    /// <summary>Groups attached to this domain.</summary>
    public IReadOnlyList<IommuGroup> AttachedGroups
    {
        get { using (_lock.EnterScope()) { return [.. _groups]; } }
    }

    private FaultInjector Faults => Unit.Faults;

    private TraceLog Trace => Unit.Trace;

    /// <summary>
    /// The <c>enforce_cache_coherency</c> domain op: from now on the IOMMU ignores no-snoop.
    /// </summary>
    /// <returns>Whether coherency is enforced (false when the hardware cannot, as the op returns).</returns>
    public bool TryEnforceCacheCoherency()
    {
        using (_lock.EnterScope())
        {
            if (CanEnforceCacheCoherency)
            {
                _enforceCacheCoherency = true;
            }
            return _enforceCacheCoherency;
        }
    }

    /// <summary>
    /// <c>iommu_map(domain, iova, phys, size, prot)</c>: maps <paramref name="size"/> bytes with the
    /// largest IOPTE size p in <see cref="PgsizeBitmap"/> such that p fits the remaining length and
    /// both iova and phys are p-aligned, repeatedly (spec §3.4). All or nothing: on failure every IOPTE
    /// this call created is removed again (as <c>iommu_map</c> unmaps on error).
    /// </summary>
    /// <returns>
    /// <see cref="Errno.None"/> (also for size 0, as the kernel's loop does nothing);
    /// <see cref="Errno.EINVAL"/> when iova, phys or size is not a multiple of the minimum page size
    /// (the core's IS_ALIGNED check in <c>__iommu_map</c>), or the range wraps past 2^64-1;
    /// the profile's <see cref="IommuHardwareProfile.OutOfApertureError"/> (EFAULT on VT-d, ERANGE on
    /// SMMUv3) when the range leaves the aperture;
    /// <see cref="Errno.EEXIST"/> when an IOPTE already covers part of the range (io-pgtable-arm's
    /// arm_lpae_init_pte answers -EEXIST; VT-d's __domain_mapping only WARNs and keeps the old PTE and
    /// AMD v1 overwrites; the model refuses uniformly because type1 never maps over a live range);
    /// <see cref="Errno.ENOMEM"/> when the fault site <c>iommu_map</c> fires (one call per batch of
    /// same-size IOPTEs, as <c>ops-&gt;map_pages</c> is called per pgsize/count batch);
    /// <see cref="Errno.ENODEV"/> when the domain was freed or has an empty bitmap.
    /// </returns>
    public Errno Map(Iova iova, PhysAddr phys, ulong size, IommuProt prot)
    {
        using (_lock.EnterScope())
        {
            if (IsFreed || PgsizeBitmap == 0)
            {
                return RefuseNoDomain();
            }
            return MapLocked(iova, phys, size, prot);
        }
    }

    /// <summary>
    /// <see cref="Map"/> of several chunks at consecutive IOVAs from <paramref name="iova"/>, each a physically
    /// contiguous range of <paramref name="chunks"/> (physical addresses), in order, under one acquisition of the
    /// domain's lock: what type1 does for one GUP batch of discontiguous chunks (issue 16: on host memory shattered into
    /// 1-page runs a chunk is one page, and a lock round trip and call per chunk was a large part of its cost). Each
    /// chunk is one <c>iommu_map</c> as far as anything can observe: the same checks, page-size split, fault-site calls
    /// and trace events, all or nothing per chunk. Stops at the first chunk that fails and returns its error, with
    /// <paramref name="mapped"/> chunks before it left mapped; <see cref="Errno.None"/> with all of them mapped.
    /// </summary>
    public Errno MapChunks(Iova iova, ReadOnlySpan<ByteRange> chunks, IommuProt prot, out int mapped)
    {
        mapped = 0;
        using (_lock.EnterScope())
        {
            if (IsFreed || PgsizeBitmap == 0)
            {
                return chunks.IsEmpty ? Errno.None : RefuseNoDomain();
            }
            if (chunks.Length > 1 && TryMapChunksInOrder(iova, chunks, prot, out mapped, out Errno batched))
            {
                return batched;
            }
            ulong at = iova.Value;
            foreach (ByteRange chunk in chunks)
            {
                Errno e = MapLocked(new Iova(at), new PhysAddr(chunk.Start), chunk.Size, prot);
                if (e != Errno.None)
                {
                    return e;
                }
                mapped++;
                at += chunk.Size;
            }
            return Errno.None;
        }
    }

    /// <summary>
    /// <see cref="MapChunks"/> when the batch's whole IOVA range is free in the table (one descent tells): then no chunk
    /// can meet EEXIST, so each chunk's checks, page-size split and fault-site calls run in order without touching the
    /// table, and the IOPTE runs of every chunk that passed go in together (<see cref="RunMap{T}.InsertSorted"/>), a
    /// leaf at a time. On memory shattered into 1-page runs a chunk is a page, and one descent, neighbour test and
    /// append per page was most of <see cref="MapLocked"/>'s ~45 ns a page (issue 16). The result is the per-chunk
    /// loop's: the same refusals in the same order, the same fault-site calls (one per IOPTE size batch) and trace
    /// events, chunks before a failing one mapped and nothing of the failing one. False (nothing done) when the range
    /// wraps, is empty or is partly mapped: the per-chunk loop then finds the chunk that meets EEXIST.
    /// </summary>
    private bool TryMapChunksInOrder(Iova iova, ReadOnlySpan<ByteRange> chunks, IommuProt prot, out int mapped, out Errno error)
    {
        mapped = 0;
        error = Errno.None;
        ulong total = 0;
        foreach (ByteRange chunk in chunks)
        {
            ulong size = chunk.Size;
            if (size == 0 || total + size < total)
            {
                return false;
            }
            total += size;
        }
        ulong rangeLast = iova.Value + (total - 1);
        if (rangeLast < iova.Value || _table.Overlaps(iova.Value, rangeLast))
        {
            return false;
        }
        ulong min = MinPageSize;
        FaultInjector faults = Faults;
        bool tracing = Trace.Enabled;
        int runs = 0;
        // IOPTEs of the smallest size, counted once after the loop: per chunk, the two counters' read-modify-writes in
        // memory made a chain from chunk to chunk (the hottest spot of this method on 1-page runs, issue 16:
        // docs/benchmarks.md, 2026-12-07 "onepage6").
        ulong smallest = 0;
        ulong at = iova.Value;
        int lane = tracing ? 0 : CheckSmallestChunks(ref at, chunks, min, faults, ref error);
        mapped = lane;
        if (lane == chunks.Length || error != Errno.None)
        {
            // Every chunk the batch maps is one IOPTE of the smallest size (memory shattered into 1-page runs): their
            // runs go into the table computed from the chunks as the table reads them, not written to _mapRuns first
            // and read back (32 bytes a page each way; issue 16, docs/benchmarks.md, 2026-12-08 "onepage10").
            if (lane != 0)
            {
                AddCount(min, (ulong)lane);
                var lanes = new SmallestChunkRuns(chunks[..lane], iova.Value, min, prot);
                _table.InsertSorted(ref lanes);
            }
            return true;
        }
        // Chunks of other sizes follow: the lane's runs first, then the general loop's, into _mapRuns in order.
        if (_mapRuns.Length < lane)
        {
            Array.Resize(ref _mapRuns, Math.Max(64, lane));
        }
        for (; runs < lane; runs++)
        {
            ulong a = iova.Value + ((ulong)runs * min);
            _mapRuns[runs] = new Run<IopteRun>(a, a + (min - 1), new IopteRun(new PhysAddr(chunks[runs].Start), min, prot));
        }
        smallest += (ulong)lane;
        foreach (ByteRange chunk in error == Errno.None ? chunks[lane..] : [])
        {
            ulong size = chunk.Size;
            ulong pa = chunk.Start;
            if (((at | pa | size) & (min - 1)) != 0 || !ByteRange.TryFromStartSize(pa, size, out _))
            {
                error = RefuseMisaligned(at, pa, size, min);
                break;
            }
            ulong last = at + (size - 1);
            if (at < Aperture.Start || last > Aperture.Last)
            {
                error = RefuseOutsideAperture(at, last);
                break;
            }
            int chunkRuns = runs;
            ulong cursor = at;
            ulong remaining = size;
            while (remaining != 0)
            {
                // A chunk of the smallest size (every chunk of memory shattered into pages) is one IOPTE of it.
                ulong p = remaining == min ? min : PageSizeBitmap.LargestFitting(PgsizeBitmap, cursor, pa, remaining);
                ulong count = remaining == min ? 1 : BatchCount(cursor, pa, remaining, p);
                if (faults.ShouldFail(FaultSite.IommuMap))
                {
                    runs = chunkRuns;
                    error = MapFailed(new Iova(at), size);
                    break;
                }
                ulong bytes = count * p;
                if (runs == _mapRuns.Length)
                {
                    Array.Resize(ref _mapRuns, Math.Max(64, runs * 2));
                }
                _mapRuns[runs++] = new Run<IopteRun>(cursor, cursor + (bytes - 1), new IopteRun(new PhysAddr(pa), p, prot));
                remaining -= bytes;
                cursor += remaining != 0 ? bytes : 0;
                pa += remaining != 0 ? bytes : 0;
            }
            if (error != Errno.None)
            {
                break;
            }
            if (size == min)
            {
                smallest++;
            }
            else
            {
                for (int k = chunkRuns; k < runs; k++)
                {
                    Run<IopteRun> r = _mapRuns[k];
                    ulong p = r.Value.PageSize;
                    AddCount(p, ((r.Last - r.Start) >> BitOperations.TrailingZeroCount(p)) + 1);
                }
            }
            if (tracing)
            {
                TraceMap(new Iova(at), new PhysAddr(chunk.Start), size, prot);
            }
            mapped++;
            at += size;
        }
        if (smallest != 0)
        {
            AddCount(min, smallest);
        }
        _table.InsertSorted(_mapRuns.AsSpan(0, runs));
        if (_mapRuns.Length > MapRunsKeep)
        {
            // A batch of chunks that split into many sizes grew it: keep no more than a GUP batch's worth alive.
            _mapRuns = [];
        }
        return true;
    }

    // TryMapChunksInOrder's checks of the leading chunks of exactly the smallest page size (every chunk of memory
    // shattered into 1-page runs), while tracing is off: each is one IOPTE, so its checks reduce to the alignment and the
    // aperture (a chunk of one aligned page cannot wrap) and its fault-site call; whatever is not such a chunk, or fails a
    // check, is left to the general loop, which refuses it as before. A failed fault site sets `error` and ends the batch,
    // as there. Returns the chunks that passed, `at` past them; their IOPTE runs are SmallestChunkRuns'. Why a loop of its
    // own: the general one, which splits chunks into page sizes and counts them, kept its state on the stack, ~80
    // instructions a chunk (issue 16; docs/benchmarks.md, 2026-12-07 "onepage6").
    private int CheckSmallestChunks(ref ulong at, ReadOnlySpan<ByteRange> chunks, ulong min, FaultInjector faults, ref Errno error)
    {
        ulong apStart = Aperture.Start;
        ulong apLast = Aperture.Last;
        ulong iova = at;
        int i = 0;
        for (; i < chunks.Length; i++)
        {
            ulong pa = chunks[i].Start;
            if (chunks[i].Last - pa != min - 1 || ((iova | pa) & (min - 1)) != 0 || iova < apStart || iova + (min - 1) > apLast)
            {
                break;
            }
            if (faults.ShouldFail(FaultSite.IommuMap))
            {
                error = MapFailed(new Iova(iova), min);
                break;
            }
            iova += min;
        }
        at = iova;
        return i;
    }

    // The IOPTE runs of chunks of exactly the smallest page size at consecutive IOVAs from `iova`: run i maps
    // [iova + i·min, iova + (i + 1)·min - 1] to chunk i's start, computed as RunMap.InsertSorted reads it.
    private readonly ref struct SmallestChunkRuns(ReadOnlySpan<ByteRange> chunks, ulong iova, ulong min, IommuProt prot) : IRunSource<IopteRun>
    {
        private readonly ReadOnlySpan<ByteRange> _chunks = chunks;

        public int Length => _chunks.Length;

        public Run<IopteRun> this[int i]
        {
            get
            {
                ulong a = iova + ((ulong)i * min);
                return new Run<IopteRun>(a, a + (min - 1), new IopteRun(new PhysAddr(_chunks[i].Start), min, prot));
            }
        }

        // A whole leaf of these runs in one loop: each chunk's word is its start ORed with the size and prot bits, and a
        // chunk physically continuing the one before (the runs would join) or not 4 KiB-aligned sends the leaf back to
        // the run-by-run test. Why: that test built, advanced and compared an IopteRun per page (TryAppendPackedLeaf ~5 %
        // of a MAP+UNMAP of 4 GiB on 1-page runs; issue 16, docs/benchmarks.md, 2026-12-08 "onepage10").
        public bool TryPackUnits(int i, ulong start, ulong unit, Span<ulong> words)
        {
            if (unit != min || start != iova + ((ulong)i * min) || !IopteRun.TryPack(new IopteRun(new PhysAddr(0), min, prot), out ulong tag))
            {
                return false;
            }
            ReadOnlySpan<ByteRange> chunks = _chunks.Slice(i, words.Length);
            ulong misaligned = 0;
            ulong next = ~chunks[0].Start;
            for (int k = 0; k < chunks.Length; k++)
            {
                ulong pa = chunks[k].Start;
                if (pa == next)
                {
                    return false;
                }
                misaligned |= pa;
                words[k] = pa | tag;
                next = pa + min;
            }
            return (misaligned & 0xFFF) == 0;
        }
    }

    private static Errno RefuseMisaligned(ulong iova, ulong phys, ulong size, ulong min) =>
        Refusals.Refuse(Errno.EINVAL, "__iommu_map", "iova 0x{0:x}, phys 0x{1:x} and size 0x{2:x} must be multiples of the domain's smallest page 0x{3:x} and not wrap",
            iova, phys, size, min);

    private Errno RefuseOutsideAperture(ulong start, ulong last) =>
        Refusals.Refuse(Unit.Profile.OutOfApertureError, "iommu_map", "[0x{0:x}, 0x{1:x}] leaves the aperture [0x{2:x}, 0x{3:x}] of the {4} domain",
            start, last, Aperture.Start, Aperture.Last, Unit.Profile.Name);

    private Errno RefuseNoDomain() =>
        Refusals.Refuse(Errno.ENODEV, "iommu_map", IsFreed ? "domain {4} was freed" : "domain {4} has no page sizes", text: Name);

    // iommu_map's body, the domain's lock held and the domain live with page sizes.
    private Errno MapLocked(Iova iova, PhysAddr phys, ulong size, IommuProt prot)
    {
        System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread);
        if (size == 0)
        {
            return Errno.None;
        }
        ulong min = MinPageSize;
        if (((iova.Value | phys.Value | size) & (min - 1)) != 0 ||
            !ByteRange.TryFromStartSize(iova.Value, size, out ByteRange range) ||
            !ByteRange.TryFromStartSize(phys.Value, size, out _))
        {
            return RefuseMisaligned(iova.Value, phys.Value, size, min);
        }
        if (!Aperture.Contains(range))
        {
            return RefuseOutsideAperture(range.Start, range.Last);
        }
        // A range of the smallest size (every 4 KiB map) is one IOPTE of it: nothing to choose or count.
        ulong firstSize = size == min ? min : PageSizeBitmap.LargestFitting(PgsizeBitmap, range.Start, phys.Value, size);
        ulong firstCount = size == min ? 1 : BatchCount(range.Start, phys.Value, size, firstSize);
        if (firstCount * firstSize == size)
        {
            // One run of one page size (every chunk of a scattered guest): the overlap check and the
            // insertion are one descent of the table, without the general insert's merge handling (TryInsertOne,
            // issue 16's pair).
            if (!_table.TryInsertOne(range.Start, range.Last, new IopteRun(phys, firstSize, prot)))
            {
                return Refusals.Refuse(Errno.EEXIST, "iommu_map", "an IOPTE of domain {4} already covers part of [0x{0:x}, 0x{1:x}]", range.Start, range.Last, text: Name);
            }
            if (Faults.ShouldFail(FaultSite.IommuMap))
            {
                _table.Remove(range.Start, range.Last);
                return MapFailed(iova, size);
            }
            AddCount(firstSize, firstCount);
            // Tested here: TraceMap is not inlined, and the call alone was 0.5-0.7 % of issue 16's 4 KiB pair (perf).
            if (Trace.Enabled)
            {
                TraceMap(iova, phys, size, prot);
            }
            return Errno.None;
        }
        if (_table.Overlaps(range.Start, range.Last))
        {
            return Refusals.Refuse(Errno.EEXIST, "iommu_map", "an IOPTE of domain {4} already covers part of [0x{0:x}, 0x{1:x}]", range.Start, range.Last, text: Name);
        }

        ulong cursor = range.Start;
        ulong pa = phys.Value;
        ulong remaining = size;
        while (remaining != 0)
        {
            ulong p = PageSizeBitmap.LargestFitting(PgsizeBitmap, cursor, pa, remaining);
            System.Diagnostics.Debug.Assert(p != 0, "alignment was checked against the minimum size");
            ulong count = BatchCount(cursor, pa, remaining, p);
            if (Faults.ShouldFail(FaultSite.IommuMap))
            {
                if (cursor != range.Start)
                {
                    RemoveLocked(range.Start, cursor - 1);
                }
                return MapFailed(iova, size);
            }
            ulong bytes = count * p;
            _table.Insert(cursor, cursor + (bytes - 1), new IopteRun(new PhysAddr(pa), p, prot));
            AddCount(p, count);
            remaining -= bytes;
            if (remaining != 0)
            {
                cursor += bytes;
                pa += bytes;
            }
        }
        TraceMap(iova, phys, size, prot);
        return Errno.None;
    }

    // The iommu_map fault site fired: the caller has taken out what it inserted.
    private Errno MapFailed(Iova iova, ulong size)
    {
        Trace.Emit(TraceKind.IommuMapFailed, 0, TraceLog.F("domain", Name), TraceLog.F("iova", iova.Value),
            TraceLog.F("size", size), TraceLog.F("errno", "ENOMEM"));
        return Refusals.Refuse(Errno.ENOMEM, "iommu_map", "allocating page-table memory of domain {4} for [0x{0:x}, +0x{1:x}) failed (injected)", iova.Value, size,
            text: Name);
    }

    private void TraceMap(Iova iova, PhysAddr phys, ulong size, IommuProt prot)
    {
        if (Trace.Enabled)
        {
            Trace.Emit(TraceKind.IommuMap, 0, TraceLog.F("domain", Name), TraceLog.F("iova", iova.Value),
                TraceLog.F("phys", phys.Value), TraceLog.F("size", size), TraceLog.F("prot", (int)prot));
        }
    }

    /// <summary>
    /// <c>iommu_iova_to_phys</c>: the physical address <paramref name="iova"/> translates to, or 0
    /// for a hole. A mapping of physical address 0 is indistinguishable from a hole: the kernel's
    /// wart, reproduced on purpose (spec §3.4, §5).
    /// </summary>
    public PhysAddr IovaToPhys(Iova iova)
    {
        using (_lock.EnterScope())
        {
            return _table.TryGetValue(iova.Value, out IopteRun v) ? v.Phys : new PhysAddr(0);
        }
    }

    /// <summary>
    /// The IOMMU's walk for one device access at <paramref name="iova"/>: the physical address and
    /// how many bytes the same run continues, or a fault reason (not mapped, read or write denied).
    /// </summary>
    public IommuTranslation Translate(Iova iova, bool write)
    {
        using (_lock.EnterScope())
        {
            if (!_table.TryGet(iova.Value, out Run<IopteRun> run))
            {
                return IommuTranslation.Faulted(IommuFaultReason.NotMapped);
            }
            IommuProt prot = run.Value.Prot;
            if (write ? (prot & IommuProt.Write) == 0 : (prot & IommuProt.Read) == 0)
            {
                return IommuTranslation.Faulted(write ? IommuFaultReason.WriteDenied : IommuFaultReason.ReadDenied);
            }
            ulong span = run.Last - iova.Value;
            ulong contiguous = span == ulong.MaxValue ? ulong.MaxValue : span + 1;
            return new IommuTranslation(IommuFaultReason.None, run.ValueAt(iova.Value).Phys, contiguous, prot, run.Value.PageSize);
        }
    }

    /// <summary>The number of leaf IOPTEs of exactly <paramref name="pageSize"/> bytes.</summary>
    public ulong EntryCount(ulong pageSize)
    {
        if (!BitOperations.IsPow2(pageSize))
        {
            return 0;
        }
        using (_lock.EnterScope())
        {
            return _countsByShift[BitOperations.TrailingZeroCount(pageSize)];
        }
    }

    /// <summary>Leaf IOPTE counts by page size, smallest size first, sizes with no entry omitted.</summary>
    public IReadOnlyList<KeyValuePair<ulong, ulong>> EntryCounts()
    {
        using (_lock.EnterScope())
        {
            List<KeyValuePair<ulong, ulong>> result = [];
            for (int s = 0; s < 64; s++)
            {
                if (_countsByShift[s] != 0)
                {
                    result.Add(new(1UL << s, _countsByShift[s]));
                }
            }
            return result;
        }
    }

    /// <summary>A snapshot of the page table's runs overlapping <paramref name="iovaRange"/> (all runs
    /// when null), clipped to it, in IOVA order.</summary>
    public IReadOnlyList<MappedRun> MappedRuns(ByteRange? iovaRange = null)
    {
        List<MappedRun> result = [];
        CollectMappedRuns(iovaRange ?? new ByteRange(0, ulong.MaxValue), result);
        return result;
    }

    /// <summary><see cref="MappedRuns"/> appended to a list the caller reuses (the unmap path, which
    /// would otherwise allocate a list per call).</summary>
    public void CollectMappedRuns(ByteRange iovaRange, List<MappedRun> into) => CollectMappedRuns(iovaRange, into, int.MaxValue);

    /// <summary><see cref="CollectMappedRuns(ByteRange, List{MappedRun})"/> of at most <paramref name="max"/> runs,
    /// the first ones in IOVA order (type1's unmap takes a mapping's runs a bounded batch at a time).</summary>
    public void CollectMappedRuns(ByteRange iovaRange, List<MappedRun> into, int max)
    {
        using (_lock.EnterScope())
        {
            int taken = 0;
            foreach (Run<IopteRun> run in _table.Overlapping(iovaRange.Start, iovaRange.Last))
            {
                if (taken++ == max)
                {
                    break;
                }
                into.Add(new MappedRun(new ByteRange(run.Start, run.Last), run.Value.Phys, run.Value.PageSize, run.Value.Prot));
            }
        }
    }

    /// <summary>
    /// <c>iommu_domain_free</c>: the domain is gone; its page table is discarded with whatever it still
    /// holds (the kernel frees the tables without unmapping). Never fails. Groups must be detached first.
    /// </summary>
    public void Free()
    {
        using (_lock.EnterScope())
        {
            System.Diagnostics.Debug.Assert(_groups.Count == 0, "domain freed while groups are attached");
            IsFreed = true;
            _table.Clear();
            Array.Clear(_countsByShift);
            _totalEntries = 0;
        }
        Trace.Emit(TraceKind.IommuDomainFree, 0, TraceLog.F("domain", Name));
    }

    /// <summary>
    /// Checks the page table's own invariants: every run is aligned to its IOPTE size in IOVA and phys,
    /// lies in the aperture, uses a supported size, and the incremental counts equal a recount.
    /// </summary>
    /// <returns>Messages naming each broken rule; empty when clean.</returns>
    public IReadOnlyList<string> CheckInvariants()
    {
        List<string> problems = [];
        using (_lock.EnterScope())
        {
            var recount = new ulong[64];
            ulong total = 0;
            foreach (Run<IopteRun> run in _table.All())
            {
                ulong p = run.Value.PageSize;
                if (!PageSizeBitmap.Supports(PgsizeBitmap, p))
                {
                    problems.Add($"{Name}: run [0x{run.Start:x}, 0x{run.Last:x}] uses unsupported size 0x{p:x}");
                    continue;
                }
                if ((run.Start & (p - 1)) != 0 || ((run.Last + 1) & (p - 1)) != 0 || (run.Value.Phys.Value & (p - 1)) != 0)
                {
                    problems.Add($"{Name}: run [0x{run.Start:x}, 0x{run.Last:x}] phys {run.Value.Phys} not aligned to 0x{p:x}");
                }
                if (!Aperture.Contains(new ByteRange(run.Start, run.Last)))
                {
                    problems.Add($"{Name}: run [0x{run.Start:x}, 0x{run.Last:x}] outside aperture {Aperture}");
                }
                ulong n = (run.Last - run.Start) / p + 1;
                recount[BitOperations.TrailingZeroCount(p)] += n;
                total += n;
            }
            if (total != _totalEntries || !recount.AsSpan().SequenceEqual(_countsByShift))
            {
                problems.Add($"{Name}: entry counts drifted: counted {total}, recorded {_totalEntries}");
            }
        }
        return problems;
    }

    internal void AddGroup(IommuGroup group)
    {
        using (_lock.EnterScope())
        {
            _groups.Add(group);
        }
    }

    internal void RemoveGroup(IommuGroup group)
    {
        using (_lock.EnterScope())
        {
            _groups.Remove(group);
        }
    }

    // How many IOPTEs of size p to map in one batch before a larger size could fit (iommu_pgsize's count).
    private ulong BatchCount(ulong iova, ulong pa, ulong remaining, ulong p)
    {
        // p and q are supported page sizes, powers of two: shifts rather than 64-bit divisions (a few ns each per chunk).
        int shift = BitOperations.TrailingZeroCount(p);
        ulong maxCount = remaining >> shift;
        ulong larger = PgsizeBitmap & ~((p << 1) - 1);
        if (p == 1UL << 63 || larger == 0)
        {
            return maxCount;
        }
        ulong q = PageSizeBitmap.MinPageSize(larger);
        if (((iova ^ pa) & (q - 1)) != 0 || (iova & (q - 1)) == 0)
        {
            return maxCount;
        }
        ulong toBoundary = (q - (iova & (q - 1))) >> shift;
        return Math.Min(maxCount, toBoundary);
    }

    private void AddCount(ulong pageSize, ulong count)
    {
        _countsByShift[BitOperations.TrailingZeroCount(pageSize)] += count;
        _totalEntries += count;
    }

    private void SubtractCount(ulong pageSize, ulong count)
    {
        int shift = BitOperations.TrailingZeroCount(pageSize);
        System.Diagnostics.Debug.Assert(_countsByShift[shift] >= count && _totalEntries >= count);
        _countsByShift[shift] -= count;
        _totalEntries -= count;
    }

    // Removes every IOPTE in [start, last], which must consist of whole IOPTEs; updates counts.
    private void RemoveLocked(ulong start, ulong last)
    {
        System.Diagnostics.Debug.Assert(_lock.IsHeldByCurrentThread);
        List<Run<IopteRun>> runs = [];
        foreach (Run<IopteRun> r in _table.Overlapping(start, last))
        {
            runs.Add(r);
        }
        foreach (Run<IopteRun> r in runs)
        {
            SubtractCount(r.Value.PageSize, (r.Last - r.Start) / r.Value.PageSize + 1);
        }
        _table.Remove(start, last);
    }
}
