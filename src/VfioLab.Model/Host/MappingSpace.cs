using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// A shared object's reverse map (struct address_space with its i_mmap tree): every VMA, in every
/// process, that maps the object, so a driver can zap all CPU mappings of a range at once
/// (unmap_mapping_range), e.g. when a BAR's memory decode is disabled or the device is reset.
/// </summary>
/// <remarks>Lock: <c>_gate</c> (i_mmap_rwsem) protects <c>_vmas</c> and the counters; it is taken
/// after an mmap lock and before any page-table lock. Zapping needs no mmap lock, as in Linux.</remarks>
internal sealed class MappingSpace
{
    private readonly OrderedLock _gate = new(LockRank.MappingSpace);
    private readonly List<Vma> _vmas = [];

    /// <summary>Calls of <see cref="UnmapMappingRange"/> so far.</summary>
    public ulong ZapCount { get; private set; }

    /// <summary>Present pages removed by zaps so far.</summary>
    public ulong ZappedPages { get; private set; }

    /// <summary>VMAs currently mapping the object.</summary>
    public int MappedVmaCount
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _vmas.Count;
            }
        }
    }

    /// <summary>A snapshot of the VMAs currently mapping the object.</summary>
    public Vma[] SnapshotVmas()
    {
        using (_gate.EnterScope())
        {
            return [.. _vmas];
        }
    }

    /// <summary>Zaps the present PTEs of every VMA whose pgoff range intersects
    /// <c>[firstPgoff, firstPgoff + pageCount)</c> (unmap_mapping_range); a later CPU access faults
    /// again. <paramref name="pageCount"/> 0 means to the end of the object, as holelen 0 does.</summary>
    public void UnmapMappingRange(ulong firstPgoff, ulong pageCount)
    {
        ulong last = pageCount == 0 || firstPgoff + pageCount - 1 < firstPgoff ? ulong.MaxValue : firstPgoff + pageCount - 1;
        using (_gate.EnterScope())
        {
            ZapCount++;
            foreach (Vma vma in _vmas)
            {
                ulong vmaLastPgoff = vma.VmPgoff + (vma.PageCount - 1);
                if (vma.VmPgoff > last || vmaLastPgoff < firstPgoff)
                {
                    continue;
                }
                ulong from = Math.Max(vma.VmPgoff, firstPgoff);
                ulong to = Math.Min(vmaLastPgoff, last);
                ZappedPages += vma.Mm.ZapPtes(vma, vma.StartPage + (from - vma.VmPgoff), to - from + 1);
            }
        }
    }

    internal void Add(Vma vma)
    {
        using (_gate.EnterScope())
        {
            _vmas.Add(vma);
        }
    }

    internal void Remove(Vma vma)
    {
        using (_gate.EnterScope())
        {
            _vmas.Remove(vma);
        }
    }
}
