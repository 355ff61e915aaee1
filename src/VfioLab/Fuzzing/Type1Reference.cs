using VfioLab.Abi;

namespace VfioLab.Fuzzing;

/// <summary>
/// A deliberately naive reference of type1 (spec type1.md §1.5-§1.7, §2.6, §2.8, §3.9, §3.14) for the
/// differential campaign's rig: one container, every mapping an array of its pages, every check a loop
/// over pages, no extents, no batches, no run maps. Slow and obviously right; it knows the rig's memory
/// layout and IOMMUs (<see cref="DifferentialRig"/>) and is told only what it cannot know: the frames a
/// successful MAP pinned, read from the owner's page table afterwards.
/// </summary>
internal sealed class Type1Reference(bool v2)
{
    private const ulong Page = 0x1000;

    /// <summary>One mapping, page by page.</summary>
    public sealed class Mapping(ulong iova, ulong size, ulong vaddr, bool read, bool write, int owner, ulong[] pfns, bool[] reserved)
    {
        public ulong Iova { get; } = iova;

        public ulong Size { get; } = size;

        public ulong Last => Iova + (Size - 1);

        public ulong Vaddr { get; } = vaddr;

        public bool Read { get; } = read;

        public bool Write { get; } = write;

        public int Owner { get; } = owner;

        /// <summary>The frame of each 4 KiB page.</summary>
        public ulong[] Pfns { get; } = pfns;

        /// <summary>Whether each page's frame is reserved (PFNMAP): never pinned nor charged.</summary>
        public bool[] Reserved { get; } = reserved;
    }

    /// <summary>The mappings by IOVA.</summary>
    public SortedDictionary<ulong, Mapping> Mappings { get; } = [];

    /// <summary>Attached groups (1 always; 2 shares the GPU's IOMMU; 3 is the 64 KiB SMMU).</summary>
    public HashSet<int> Groups { get; } = [1];

    /// <summary>Dirty tracking on.</summary>
    public bool Tracking { get; private set; }

    /// <summary><c>locked_vm</c> in pages, per owner pid.</summary>
    public Dictionary<int, long> LockedVm { get; } = [];

    /// <summary>The minimum IOMMU page: 4 KiB, or 64 KiB while the SMMU group is attached.</summary>
    public ulong PageSize => Groups.Contains(3) ? 0x10000 : Page;

    /// <summary>MAP_DMA; <paramref name="pfnOf"/> reads the owner's page table once the real call succeeded.</summary>
    public long Map(int pid, ulong iova, ulong vaddr, ulong size, bool read, bool write, long memlockPages, Func<ulong, ulong> pfnOf)
    {
        if (size == 0)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (iova + (size - 1) < iova || vaddr + (size - 1) < vaddr)
        {
            return Errno.EOVERFLOW.AsReturn();
        }
        ulong pg = PageSize;
        if (size % pg != 0 || iova % pg != 0 || vaddr % pg != 0)
        {
            return Errno.EINVAL.AsReturn();
        }
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
        // Pinning goes chunk by chunk: a chunk is a run of pages of one reserved-ness whose frames are
        // contiguous; each page is charged against RLIMIT_MEMLOCK as the chunk grows (ENOMEM), then the chunk is
        // mapped into every domain, which refuses a run not aligned to its smallest page (EINVAL: the 64 KiB
        // SMMU on a 4 KiB host). GUP stops short at a page it cannot pin; the refill there fails the whole chunk
        // being built (EFAULT) before it is mapped; chunks already mapped stay mapped until MAP unwinds.
        ulong pages = size / Page;
        long locked = LockedVm.GetValueOrDefault(pid);
        long charged = 0;
        var reserved = new bool[pages];
        var pfns = new ulong[pages];
        for (ulong i = 0; i < pages; i++)
        {
            pfns[i] = pfnOf(vaddr + (i * Page));
            reserved[i] = DifferentialRig.KindOf(vaddr + (i * Page)) == DifferentialRig.MemoryKind.Pfnmap;
        }
        ulong at = 0;
        while (at < pages)
        {
            if (!Pinnable(vaddr + (at * Page), write))
            {
                return Errno.EFAULT.AsReturn();
            }
            ulong first = at;
            do
            {
                if (!reserved[at] && locked + ++charged > memlockPages)
                {
                    return Errno.ENOMEM.AsReturn();
                }
                at++;
                if (at < pages && !Pinnable(vaddr + (at * Page), write))
                {
                    return Errno.EFAULT.AsReturn();
                }
            }
            while (at < pages && reserved[at] == reserved[first] && pfns[at] == pfns[at - 1] + 1);
            ulong chunkIova = iova + (first * Page);
            if (Groups.Contains(3) && ((chunkIova | (pfns[first] * Page) | ((at - first) * Page)) & 0xffff) != 0)
            {
                return Errno.EINVAL.AsReturn();
            }
        }
        Mappings.Add(iova, new Mapping(iova, size, vaddr, read, write, pid, pfns, reserved));
        LockedVm[pid] = locked + charged;
        return 0;
    }

    /// <summary>UNMAP_DMA (with ALL, or reporting dirty pages into <paramref name="bitmap"/>, whose words
    /// start at <paramref name="iova"/> with one bit per <paramref name="bitmapPgsize"/>). Returns the
    /// result and the size written back.</summary>
    public (long Ret, ulong Size) Unmap(ulong iova, ulong size, bool all, ulong[]? bitmap, ulong bitmapPgsize, Func<int, bool> alive)
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
            if (bitmap is not null)
            {
                Report(m, iova, bitmap);
            }
            total += m.Size;
            Remove(m, alive);
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
                Tracking = true;
                return 0;
            case 2:
                Tracking = false;
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
            }
        }
        return 0;
    }

    /// <summary>SET_CONTAINER of group 2 or 3: EINVAL when a mapping lies outside the SMMU's 48-bit aperture or
    /// across its software-MSI window, or when replay cannot map a physically contiguous run on 64 KiB pages.</summary>
    public long Attach(int group)
    {
        if (group == 3)
        {
            foreach (Mapping m in Mappings.Values)
            {
                if (m.Last > DifferentialRig.SmmuApertureLast || (m.Iova <= DifferentialRig.SwMsiLast && DifferentialRig.SwMsiStart <= m.Last))
                {
                    return Errno.EINVAL.AsReturn();
                }
                if (!ReplayAligned(m, 0x10000))
                {
                    return Errno.EINVAL.AsReturn();
                }
            }
        }
        Groups.Add(group);
        return 0;
    }

    /// <summary>The group left the container.</summary>
    public void Detach(int group) => Groups.Remove(group);

    /// <summary>Whether a device DMA of 8 bytes at <paramref name="iova"/> completes: a mapping covers it with the
    /// permission, and the page is RAM (another driver's MMIO that is no BAR answers unsupported request).</summary>
    public bool DmaCompletes(ulong iova, bool write)
    {
        foreach (Mapping m in Mappings.Values)
        {
            if (iova >= m.Iova && iova + 7 <= m.Last)
            {
                return (write ? m.Write : m.Read) && !m.Reserved[(iova - m.Iova) / Page];
            }
        }
        return false;
    }

    /// <summary>Expected pins per frame: one per non-reserved mapping page that translates to it.</summary>
    public Dictionary<ulong, ulong> Pins()
    {
        var pins = new Dictionary<ulong, ulong>();
        foreach (Mapping m in Mappings.Values)
        {
            for (int i = 0; i < m.Pfns.Length; i++)
            {
                if (!m.Reserved[i])
                {
                    pins[m.Pfns[i]] = pins.GetValueOrDefault(m.Pfns[i]) + 1;
                }
            }
        }
        return pins;
    }

    private static bool Pinnable(ulong vaddr, bool write) => DifferentialRig.KindOf(vaddr) switch
    {
        DifferentialRig.MemoryKind.Hole => false,
        DifferentialRig.MemoryKind.ReadOnly => !write,
        _ => true,
    };

    private bool InsideWindows(ulong iova, ulong last)
    {
        bool smmu = Groups.Contains(3);
        if (smmu && last > DifferentialRig.SmmuApertureLast)
        {
            return false;
        }
        foreach ((ulong start, ulong end) in DifferentialRig.AmdHoles)
        {
            if (iova <= end && start <= last)
            {
                return false;
            }
        }
        return !smmu || !(iova <= DifferentialRig.SwMsiLast && DifferentialRig.SwMsiStart <= last);
    }

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

    // Every IOMMU-backed group is outside pinned-page scope, so a report marks every page of the mapping
    // dirty. Words are written whole: the first ORed with what is there, the rest overwritten, the last
    // word's bits past the mapping zeroed (spec §3.11).
    private void Report(Mapping m, ulong baseIova, ulong[] bitmap)
    {
        int shift = Log2(PageSize);
        ulong first = (m.Iova - baseIova) >> shift;
        ulong count = m.Size >> shift;
        ulong firstWord = first / 64;
        ulong lastWord = (first + count - 1) / 64;
        for (ulong w = firstWord; w <= lastWord; w++)
        {
            ulong word = w == firstWord ? bitmap[w] : 0;
            for (ulong bit = 0; bit < 64; bit++)
            {
                ulong index = (w * 64) + bit;
                if (index >= first && index < first + count)
                {
                    word |= 1UL << (int)bit;
                }
            }
            bitmap[w] = word;
        }
    }

    private void Remove(Mapping m, Func<int, bool> alive)
    {
        Mappings.Remove(m.Iova);
        if (alive(m.Owner))
        {
            LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) - m.Reserved.Count(r => !r);
        }
    }

    // Replay maps each maximal physically contiguous run; each must be aligned to the new domain's page.
    private static bool ReplayAligned(Mapping m, ulong page)
    {
        int i = 0;
        while (i < m.Pfns.Length)
        {
            int j = i + 1;
            while (j < m.Pfns.Length && m.Pfns[j] == m.Pfns[j - 1] + 1)
            {
                j++;
            }
            ulong iova = m.Iova + ((ulong)i * Page);
            ulong phys = m.Pfns[i] * Page;
            ulong len = (ulong)(j - i) * Page;
            if (((iova | phys | len) & (page - 1)) != 0)
            {
                return false;
            }
            i = j;
        }
        return true;
    }

    private static int Log2(ulong v) => v == 0 ? 64 : System.Numerics.BitOperations.Log2(v);
}
