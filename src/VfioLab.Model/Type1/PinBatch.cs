using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Type1;

/// <summary>
/// Pages pinned ahead of use by one GUP call (struct vfio_batch), consumed across successive chunks.
/// The kernel's batch is one page of page pointers (512 pages on a 4 KiB host); this one holds up to
/// <see cref="Capacity"/> physically contiguous runs, so a huge-page guest costs a handful of calls
/// (spec §2.5 allows any batching with the same chunk boundaries and accounting).
/// </summary>
/// <remarks>Owned by one container and used only under its lock.</remarks>
internal sealed class PinBatch
{
    /// <summary>Runs per refill when huge pages are allowed.</summary>
    public const int DefaultRuns = 64;

    private const ulong InitialPagesPerRun = 8;

    private readonly PfnRun[] _runs;
    private int _count;
    private int _index;
    private ulong _offset;
    private ulong _pagesPerRunHint = InitialPagesPerRun;

    public PinBatch(int capacity)
    {
        _runs = new PfnRun[capacity];
        Capacity = capacity;
    }

    /// <summary>Runs one refill may hold.</summary>
    public int Capacity { get; }

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
        _pagesPerRunHint = Math.Max(InitialPagesPerRun, (ulong)got / (ulong)_count);
        return got;
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
    }
}
