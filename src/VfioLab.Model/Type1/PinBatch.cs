using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Type1;

/// <summary>
/// Pages pinned ahead of use by one GUP call (struct vfio_batch), consumed across successive chunks.
/// The kernel's batch is one page of page pointers (512 pages on a 4 KiB host); this one holds up to
/// <see cref="Capacity"/> physically contiguous runs, so a huge-page guest costs a handful of calls
/// (spec §2.5 allows any batching with the same chunk boundaries and accounting).
/// </summary>
/// <remarks>
/// Owned by one container and used only under its lock. The capacity starts at what it was built with and grows
/// while refills come back full of short runs, up to <see cref="MaxRuns"/>; <see cref="Release"/> returns it to the start.
/// Why it grows (issue 16): GUP pins each refill's frames in address order (<see cref="PhysicalMemory.PinRuns"/>), and
/// on memory shattered into 1-page runs the frames of one refill are scattered over all of RAM, so the pin-count map is
/// updated with a cache miss per frame unless a refill holds enough frames for neighbours to share the map's leaves:
/// measured on 4 GiB in 1-page runs, the pins cost about 3 times less per page with refills of 64 Ki runs than of 512.
/// Pages pinned ahead of use are released unused at the end, so the size of a refill changes no end state; it changes
/// how often the <c>pin</c> fault site is asked and how many <c>pin</c> trace events a MAP makes (one per refill).
/// </remarks>
internal sealed class PinBatch
{
    /// <summary>Runs per refill when huge pages are allowed, at first.</summary>
    public const int DefaultRuns = 64;

    /// <summary>The most runs one refill may grow to hold (1 MiB of runs).</summary>
    public const int MaxRuns = 65536;

    private const ulong InitialPagesPerRun = 8;

    // Refills whose runs average fewer pages than this grow the batch: longer runs already share the map's leaves.
    private const ulong GrowBelowPagesPerRun = 64;

    private readonly int _initialCapacity;
    private PfnRun[] _runs;
    private int _count;
    private int _index;
    private ulong _offset;
    private ulong _pagesPerRunHint = InitialPagesPerRun;
    private bool _growPending;

    public PinBatch(int capacity)
    {
        _runs = new PfnRun[capacity];
        _initialCapacity = capacity;
    }

    /// <summary>Runs one refill may hold now.</summary>
    public int Capacity => _runs.Length;

    /// <summary>Whether every pinned page was consumed.</summary>
    public bool IsEmpty => _index >= _count;

    /// <summary>The next unconsumed frame.</summary>
    public Pfn Current => _runs[_index].First.Plus(_offset);

    /// <summary>Unconsumed frames contiguous with <see cref="Current"/> in the current run.</summary>
    public ulong CurrentRunLeft => _runs[_index].Count - _offset;

    /// <summary>Pins up to <paramref name="maxPages"/> pages at <paramref name="vaddr"/> of <paramref name="mm"/>
    /// with long-term GUP (taking the mmap lock for read). Returns pages pinned (at least 1) or -errno.</summary>
    public long Refill(AddressSpace mm, HostVirtAddr vaddr, ulong maxPages, bool write)
    {
        System.Diagnostics.Debug.Assert(IsEmpty);
        if (_growPending)
        {
            _runs = new PfnRun[Math.Min(MaxRuns, _runs.Length * 8)];
            _growPending = false;
        }
        // Bound one call by what the runs can plausibly hold, so GUP does not fault far ahead of use;
        // the bound follows the run length last seen (huge pages grow it quickly).
        ulong bound = (ulong)Capacity * Math.Max(_pagesPerRunHint, 1);
        ulong n = Math.Min(maxPages, Capacity == 1 ? maxPages : bound);
        long got = Gup.PinUserPages(mm, vaddr, n, write, _runs, out _count);
        _index = 0;
        _offset = 0;
        if (got <= 0)
        {
            _count = 0;
            return got;
        }
        // One 64-bit division at most, and none for a refill of one run (every 4 KiB MAP, issue 16's pair): the JIT made
        // two, each tens of cycles on the Xeon the pair is measured on.
        ulong pagesPerRun = _count == 1 ? (ulong)got : (ulong)got / (ulong)_count;
        _pagesPerRunHint = Math.Max(InitialPagesPerRun, pagesPerRun);
        if (_count == _runs.Length && _runs.Length < MaxRuns && _initialCapacity > 1 && pagesPerRun < GrowBelowPagesPerRun)
        {
            // Full of short runs: the next refill takes more (the array is replaced only while nothing is in it).
            _growPending = true;
        }
        return got;
    }

    // Back to the capacity it was built with, once empty (every Release: the end of a MAP or a replay, or a failure).
    private void Trim()
    {
        _growPending = false;
        if (_runs.Length != _initialCapacity)
        {
            _runs = new PfnRun[_initialCapacity];
            _pagesPerRunHint = InitialPagesPerRun;
        }
    }

    /// <summary>The runs not yet consumed, the first of them from its <paramref name="skip"/>-th page on (empty when
    /// <see cref="IsEmpty"/>); what <see cref="ConsumeRuns"/> then advances over.</summary>
    public ReadOnlySpan<PfnRun> Unconsumed(out ulong skip)
    {
        skip = _offset;
        return IsEmpty ? [] : _runs.AsSpan(_index, _count - _index);
    }

    /// <summary>Consumes <paramref name="runs"/> whole runs of <see cref="Unconsumed"/> (the first from where it was)
    /// and then <paramref name="pages"/> pages of the next, which must leave that run with pages to spare.</summary>
    public void ConsumeRuns(int runs, ulong pages)
    {
        System.Diagnostics.Debug.Assert(runs <= _count - _index && (runs == _count - _index ? pages == 0 : pages < _runs[_index + runs].Count - (runs == 0 ? _offset : 0)));
        _offset = runs == 0 ? _offset + pages : pages;
        _index += runs;
    }

    /// <summary>Marks <paramref name="pages"/> frames of the current run as used.</summary>
    public void Consume(ulong pages)
    {
        _offset += pages;
        if (_offset == _runs[_index].Count)
        {
            _index++;
            _offset = 0;
        }
    }

    /// <summary>vfio_batch_unpin: releases every unconsumed page (dirtying them for a writable mapping).</summary>
    public void Release(Machine machine, bool dirty, int pid)
    {
        while (!IsEmpty)
        {
            Gup.UnpinUserPages(machine, new PfnRun(Current, CurrentRunLeft), dirty, pid);
            _index++;
            _offset = 0;
        }
        _count = 0;
        _index = 0;
        Trim();
    }
}
