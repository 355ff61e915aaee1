using VfioLab.Addressing;
using VfioLab.Collections;

using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// The object behind shared mappings (a shmem or hugetlbfs inode's page cache, or the RAM a
/// driver hands out through remap_pfn_range): page offset to frame, allocated on first fault,
/// one frame reference held per page, released when the last VMA detaches.
/// </summary>
/// <remarks>Lock: <c>_gate</c> protects <c>_pages</c> and <c>_attached</c>. Order: taken under an
/// address space's page-table lock, before <see cref="PhysicalMemory"/>'s lock.
/// Never changing: the memory and the fault unit <see cref="HugePages"/>.</remarks>
internal sealed class SharedBacking(PhysicalMemory memory, ulong hugePages)
{
    private readonly OrderedLock _gate = new(LockRank.SharedBacking);
    private readonly RunMap<PfnValue> _pages = new();
    private int _attached;

    /// <summary>Frames per allocation unit: 1, or the huge page size in frames.</summary>
    public ulong HugePages { get; } = hugePages;

    /// <summary>VMAs (in any process) currently mapping the object.</summary>
    public int Attached
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _attached;
            }
        }
    }

    /// <summary>A VMA starts mapping the object.</summary>
    public void Attach()
    {
        using (_gate.EnterScope())
        {
            _attached++;
        }
    }

    /// <summary>A VMA stops mapping the object; the last one frees every frame it owns.</summary>
    public void Detach()
    {
        using (_gate.EnterScope())
        {
            if (--_attached > 0)
            {
                return;
            }
            foreach (Run<PfnValue> r in _pages.All())
            {
                memory.DropRefs(new PfnRun(r.Value.Pfn, r.Span + 1));
            }
            _pages.Clear();
        }
    }

    /// <summary>Installs frames the caller allocated (one reference each, now owned by the object) at
    /// <paramref name="pgoff"/>.</summary>
    public void Adopt(ulong pgoff, PfnRun run)
    {
        using (_gate.EnterScope())
        {
            _pages.Set(pgoff, pgoff + run.Count - 1, new PfnValue(run.First));
        }
    }

    /// <summary>The frames from <paramref name="pgoff"/> on, up to <paramref name="maxPages"/> and one
    /// physically contiguous run, allocating missing pages (whole huge blocks for hugetlb).
    /// False when allocation fails.</summary>
    public bool TryGetOrAllocate(ulong pgoff, ulong maxPages, out PfnRun run)
    {
        using (_gate.EnterScope())
        {
            if (_pages.TryGet(pgoff, out Run<PfnValue> r))
            {
                run = new PfnRun(r.ValueAt(pgoff).Pfn, Math.Min(maxPages, r.Last - pgoff + 1));
                return true;
            }
            if (HugePages > 1)
            {
                ulong blockStart = pgoff & ~(HugePages - 1);
                if (!memory.TryAllocateHuge(HugePages, out Pfn first))
                {
                    run = default;
                    return false;
                }
                _pages.Set(blockStart, blockStart + HugePages - 1, new PfnValue(first));
                run = new PfnRun(first.Plus(pgoff - blockStart), Math.Min(maxPages, HugePages - (pgoff - blockStart)));
                return true;
            }
            ulong limit = maxPages;
            if (_pages.TryGetAtOrAfter(pgoff, out Run<PfnValue> next))
            {
                limit = Math.Min(limit, next.Start - pgoff);
            }
            if (!memory.TryAllocateRun(limit, out run))
            {
                return false;
            }
            _pages.Set(pgoff, pgoff + run.Count - 1, new PfnValue(run.First));
            return true;
        }
    }
}
