using VfioLab.Abi;

namespace VfioLab.Fuzzing;

/// <summary>
/// A deliberately naive reference of type1 (spec type1.md §1.5-§1.8, §2.6, §2.8, §3.7-§3.11, §3.14) for the
/// differential campaign's rig: one container, every mapping an array of its pages, every external pin an
/// entry of a dictionary keyed by page, every check a loop over pages, no extents, no batches, no run maps.
/// Slow and obviously right; it knows the rig's memory layout and IOMMUs (<see cref="DifferentialRig"/>) and is
/// told only what it cannot know: the frame at a user address, read from a process's page table after the
/// real call (<c>pfnOf</c>), and whether a process is alive (<c>alive</c>).
/// </summary>
internal sealed partial class Type1Reference(bool v2, Func<int, ulong, ulong> pfnOf, Func<int, bool> alive, long memlockPages)
{
    /// <summary>The mdev's group.</summary>
    public const int MdevGroup = 10;

    /// <summary>VFIO_PIN_PAGES_MAX_ENTRIES on a 4 KiB host.</summary>
    public const int PinPagesMax = 512;

    private const ulong Page = 0x1000;

    /// <summary>The mappings by IOVA.</summary>
    public SortedDictionary<ulong, Mapping> Mappings { get; } = [];

    /// <summary>Attached IOMMU-backed groups (1 at first; 2 shares the GPU's IOMMU; 3 is the 64 KiB SMMU).</summary>
    public HashSet<int> Groups { get; } = [1];

    /// <summary>The mdev's (emulated) group is attached.</summary>
    public bool MdevAttached { get; private set; }

    /// <summary>Dirty tracking on.</summary>
    public bool Tracking { get; private set; }

    /// <summary><c>locked_vm</c> in pages, per owner pid.</summary>
    public Dictionary<int, long> LockedVm { get; } = [];

    /// <summary>The container has an IOMMU domain.</summary>
    public bool HasDomain => Groups.Count > 0;

    /// <summary>The minimum IOMMU page: 4 KiB, or 64 KiB while the SMMU group is attached.</summary>
    public ulong PageSize => Groups.Contains(3) ? 0x10000 : Page;

    /// <summary>MAP_DMA's first checks, shared with the VADDR update: size 0 (EINVAL), a wrap of iova or vaddr
    /// (EOVERFLOW), then alignment of size, iova and vaddr to the minimum page (EINVAL).</summary>
    private Errno CheckRange(ulong iova, ulong vaddr, ulong size)
    {
        if (size == 0)
        {
            return Errno.EINVAL;
        }
        if (iova + (size - 1) < iova || vaddr + (size - 1) < vaddr)
        {
            return Errno.EOVERFLOW;
        }
        ulong pg = PageSize;
        return size % pg != 0 || iova % pg != 0 || vaddr % pg != 0 ? Errno.EINVAL : Errno.None;
    }

    /// <summary>MAP_DMA by <paramref name="pid"/>: the checks in the kernel's order, then (with a domain) pinning
    /// chunk by chunk; without a domain nothing is pinned nor charged.</summary>
    public long Map(int pid, ulong iova, ulong vaddr, ulong size, bool read, bool write)
    {
        Errno bad = CheckRange(iova, vaddr, size);
        if (bad != Errno.None)
        {
            return bad.AsReturn();
        }
        ulong pg = PageSize;
        ulong last = iova + (size - 1);
        foreach (Mapping m in Mappings.Values)
        {
            if (m.Iova <= last && iova <= m.Last)
            {
                return Errno.EEXIST.AsReturn();
            }
        }
        if (!InsideWindows(iova, last))
        {
            return Errno.EINVAL.AsReturn();
        }
        ulong pages = size / Page;
        var reserved = new bool[pages];
        for (ulong i = 0; i < pages; i++)
        {
            reserved[i] = IsReservedKind(pid, vaddr + (i * Page));
        }
        var mapping = new Mapping(iova, size, vaddr, read, write, pid, reserved);
        if (HasDomain)
        {
            ulong[] pfns = FramesFrom(pid, mapping);
            Errno e = PinAndMap(pid, mapping, pfns, Groups.Contains(3), out long charged);
            if (e != Errno.None)
            {
                return e.AsReturn();
            }
            mapping.Pfns = pfns;
            mapping.IommuMapped = true;
            NoteDeviceHold(mapping, pid);
            Account(mapping, charged);
        }
        if (Tracking)
        {
            mapping.BitmapPgsize = pg;
        }
        Mappings.Add(iova, mapping);
        return 0;
    }

    /// <summary>UNMAP_DMA (with ALL, or reporting dirty pages into <paramref name="bitmap"/>, whose words
    /// start at <paramref name="iova"/> with one bit per <paramref name="bitmapPgsize"/>). Returns the
    /// result and the size written back.</summary>
    public (long Ret, ulong Size) Unmap(ulong iova, ulong size, bool all, ulong[]? bitmap, ulong bitmapPgsize)
    {
        ulong pg = PageSize;
        if (bitmap is not null && (size >> Log2(bitmapPgsize)) == 0)
        {
            return (Errno.EINVAL.AsReturn(), 0);
        }
        if (iova % pg != 0)
        {
            return (Errno.EINVAL.AsReturn(), 0);
        }
        ulong last = ulong.MaxValue;
        if (!all)
        {
            if (size == 0 || size % pg != 0)
            {
                return (Errno.EINVAL.AsReturn(), 0);
            }
            if (iova + (size - 1) < iova)
            {
                return (Errno.EOVERFLOW.AsReturn(), 0);
            }
            last = iova + (size - 1);
        }
        if (bitmap is not null && (!Tracking || bitmapPgsize != pg))
        {
            return (Errno.EINVAL.AsReturn(), 0);
        }
        if (v2 && !all && Bisects(iova, last))
        {
            return (Errno.EINVAL.AsReturn(), 0);
        }
        ulong total = 0;
        foreach (Mapping m in Mappings.Values.ToList())
        {
            if (m.Last < iova || m.Iova > last)
            {
                continue;
            }
            if (!v2 && m.Iova < iova)
            {
                break;
            }
            // The unmap notification: the well-behaved driver unpins every page it holds in the whole mapping.
            DropExternalPins(m);
            if (bitmap is not null)
            {
                Report(m, iova, bitmap);
            }
            total += m.Size;
            Remove(m);
        }
        return (0, total);
    }

    /// <summary>DIRTY_PAGES START (1), STOP (2) or GET_BITMAP (4) over <c>[iova, iova + size)</c>.</summary>
    public long Dirty(uint flag, ulong iova, ulong size, ulong[]? bitmap, ulong bitmapPgsize)
    {
        if (!v2)
        {
            return Errno.EACCES.AsReturn();
        }
        switch (flag)
        {
            case 1:
                if (!Tracking)
                {
                    foreach (Mapping m in Mappings.Values)
                    {
                        m.BitmapPgsize = PageSize;
                        m.PopulateDirty();
                    }
                }
                Tracking = true;
                return 0;
            case 2:
                Tracking = false;
                foreach (Mapping m in Mappings.Values)
                {
                    m.Dirty.Clear();
                }
                return 0;
        }
        if (size == 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (iova + (size - 1) < iova)
        {
            return Errno.EOVERFLOW.AsReturn();
        }
        ulong pg = PageSize;
        if ((size >> Log2(bitmapPgsize)) == 0 || bitmapPgsize != pg || iova % pg != 0 || size % pg != 0 || !Tracking)
        {
            return Errno.EINVAL.AsReturn();
        }
        ulong last = iova + (size - 1);
        if (Bisects(iova, last))
        {
            return Errno.EINVAL.AsReturn();
        }
        foreach (Mapping m in Mappings.Values)
        {
            if (m.Iova >= iova && m.Last <= last)
            {
                Report(m, iova, bitmap!);
                m.PopulateDirty();
            }
        }
        return 0;
    }

    /// <summary>Expected pins per frame: one per non-reserved page of a mapping in the IOMMU that translates to
    /// it, and one per external pin.</summary>
    public Dictionary<ulong, ulong> Pins()
    {
        var pins = new Dictionary<ulong, ulong>();
        foreach (Mapping m in Mappings.Values)
        {
            for (int i = 0; m.IommuMapped && i < m.Pfns.Length; i++)
            {
                if (!m.Reserved[i])
                {
                    pins[m.Pfns[i]] = pins.GetValueOrDefault(m.Pfns[i]) + 1;
                }
            }
            foreach ((ulong pfn, _) in m.Vpfns.Values)
            {
                pins[pfn] = pins.GetValueOrDefault(pfn) + 1;
            }
        }
        return pins;
    }

    /// <summary>The mapping holding <paramref name="iova"/>, or null.</summary>
    public Mapping? Find(ulong iova)
    {
        foreach (Mapping m in Mappings.Values)
        {
            if (iova >= m.Iova && iova <= m.Last)
            {
                return m;
            }
        }
        return null;
    }

    private ulong[] FramesFrom(int pid, Mapping m)
    {
        var pfns = new ulong[m.Size / Page];
        for (ulong i = 0; i < (ulong)pfns.Length; i++)
        {
            pfns[i] = FrameAt(pid, m.Vaddr + (i * Page));
        }
        return pfns;
    }

    // vfio_pin_pages_remote and iommu_map, chunk by chunk. A chunk is a run of pages of one reserved-ness whose
    // frames are contiguous; each page without an external pin is counted against RLIMIT_MEMLOCK as the chunk
    // grows, with the caller's locked_vm (ENOMEM); then the chunk is charged to the owner (ENOMEM past its limit)
    // and mapped into the domain, which refuses a run not aligned to its smallest page (EINVAL: the 64 KiB SMMU
    // on a 4 KiB host). GUP stops short at a page it cannot pin; the refill there fails the whole chunk being
    // built (EFAULT; ENODEV for another driver's MMIO under seeds' strict_mmio_maps) before it is mapped. Returns the pages charged to the owner (on failure, those charged before
    // it, the chunk iommu_map refused included); the caller commits them.
    private Errno PinAndMap(int caller, Mapping m, ulong[] pfns, bool align64k, out long charged)
    {
        charged = 0;
        ulong pages = m.Size / Page;
        long callerLocked = LockedVm.GetValueOrDefault(caller);
        long ownerLocked = LockedVm.GetValueOrDefault(m.Owner);
        ulong at = 0;
        while (at < pages)
        {
            Errno refused = PinError(caller, m.Vaddr + (at * Page), m.Write);
            if (refused != Errno.None)
            {
                return refused;
            }
            ulong first = at;
            long chunk = 0;
            do
            {
                if (!m.Reserved[at] && !m.Vpfns.ContainsKey(at) && callerLocked + ++chunk > memlockPages)
                {
                    return Errno.ENOMEM;
                }
                at++;
                refused = at < pages ? PinError(caller, m.Vaddr + (at * Page), m.Write) : Errno.None;
                if (refused != Errno.None)
                {
                    return refused;
                }
            }
            while (at < pages && m.Reserved[at] == m.Reserved[first] && pfns[at] == pfns[at - 1] + 1);
            if (ownerLocked + chunk > memlockPages)
            {
                return Errno.ENOMEM;
            }
            ownerLocked += chunk;
            if (caller == m.Owner)
            {
                callerLocked += chunk;
            }
            charged += chunk;
            ulong chunkIova = m.Iova + (first * Page);
            if (align64k && ((chunkIova | (pfns[first] * Page) | ((at - first) * Page)) & 0xffff) != 0)
            {
                return Errno.EINVAL;
            }
        }
        return Errno.None;
    }

    private void ResizeIfPageChanged(ulong oldPage)
    {
        if (Tracking && PageSize != oldPage)
        {
            foreach (Mapping m in Mappings.Values)
            {
                m.AllDirty(PageSize);
            }
        }
    }

    private static bool Overlaps(Mapping m, ulong start, ulong last) => m.Iova <= last && start <= m.Last;

    // v2's no-bisection rule: a mapping holding the first byte must start there, one holding the last must end there.
    private bool Bisects(ulong iova, ulong last)
    {
        foreach (Mapping m in Mappings.Values)
        {
            if ((m.Iova < iova && iova <= m.Last) || (m.Iova <= last && last < m.Last))
            {
                return true;
            }
        }
        return false;
    }

    // A mapping in the IOMMU while an IOMMU-backed group (never in pinned-page scope in this rig) is attached
    // reports every page dirty; otherwise its bits (external pins, vfio_dma_rw writes). Words are written whole:
    // the first ORed with what is there, the rest overwritten, the last word's bits past the mapping zeroed
    // (spec §3.11).
    private void Report(Mapping m, ulong baseIova, ulong[] bitmap)
    {
        ulong pgsize = PageSize;
        ulong first = (m.Iova - baseIova) / pgsize;
        ulong count = m.Size / pgsize;
        bool all = HasDomain && m.IommuMapped;
        ulong firstWord = first / 64;
        ulong lastWord = (first + count - 1) / 64;
        for (ulong w = firstWord; w <= lastWord; w++)
        {
            ulong word = w == firstWord ? bitmap[w] : 0;
            for (ulong bit = 0; bit < 64; bit++)
            {
                ulong index = (w * 64) + bit;
                if (index >= first && index < first + count && (all || m.Dirty.Contains(index - first)))
                {
                    word |= 1UL << (int)bit;
                }
            }
            bitmap[w] = word;
        }
    }

    private void Remove(Mapping m)
    {
        Mappings.Remove(m.Iova);
        if (m.IommuMapped && alive(m.Owner))
        {
            LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) - m.NonReserved;
        }
    }

    // vfio_lock_acct: the owner's locked_vm and the mapping's own count move together.
    private void Account(Mapping m, long pages)
    {
        LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) + pages;
        m.LockedVm += pages;
    }

    private static int Log2(ulong v) => v == 0 ? 64 : System.Numerics.BitOperations.Log2(v);
}
