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
internal sealed class Type1Reference(bool v2, Func<int, ulong, ulong> pfnOf, Func<int, bool> alive, long memlockPages)
{
    /// <summary>The mdev's group.</summary>
    public const int MdevGroup = 10;

    /// <summary>VFIO_PIN_PAGES_MAX_ENTRIES on a 4 KiB host.</summary>
    public const int PinPagesMax = 512;

    private const ulong Page = 0x1000;

    /// <summary>One mapping, page by page.</summary>
    public sealed class Mapping(ulong iova, ulong size, ulong vaddr, bool read, bool write, int owner, bool[] reserved)
    {
        public ulong Iova { get; } = iova;

        public ulong Size { get; } = size;

        public ulong Last => Iova + (Size - 1);

        public ulong Vaddr { get; } = vaddr;

        public bool Read { get; } = read;

        public bool Write { get; } = write;

        public int Owner { get; } = owner;

        /// <summary>Pinned and present in every IOMMU domain (<c>iommu_mapped</c>); false while the container has none.</summary>
        public bool IommuMapped { get; set; }

        /// <summary>The frame of each 4 KiB page, while <see cref="IommuMapped"/>.</summary>
        public ulong[] Pfns { get; set; } = [];

        /// <summary>Whether each page's frame is reserved (PFNMAP): never pinned nor charged.</summary>
        public bool[] Reserved { get; } = reserved;

        /// <summary>External pins by page index: the frame and the reference count (one page pin each).</summary>
        public SortedDictionary<ulong, (ulong Pfn, uint Refs)> Vpfns { get; } = [];

        /// <summary>Dirty bits by bit index at <see cref="BitmapPgsize"/>, while tracking.</summary>
        public HashSet<ulong> Dirty { get; } = [];

        /// <summary>The page size of the dirty bits.</summary>
        public ulong BitmapPgsize { get; set; }

        public int NonReserved => Reserved.Count(r => !r);

        /// <summary>The page index holding <paramref name="iova"/>.</summary>
        public ulong PageOf(ulong iova) => (iova - Iova) / Page;

        /// <summary>Sets the dirty bit of every bitmap page overlapping <c>[first, last]</c>.</summary>
        public void MarkDirty(ulong first, ulong last)
        {
            for (ulong bit = (first - Iova) / BitmapPgsize; bit <= (last - Iova) / BitmapPgsize; bit++)
            {
                Dirty.Add(bit);
            }
        }

        /// <summary>Resets the bits to exactly the externally pinned pages.</summary>
        public void PopulateDirty()
        {
            Dirty.Clear();
            foreach (ulong page in Vpfns.Keys)
            {
                Dirty.Add(page * Page / BitmapPgsize);
            }
        }

        /// <summary>Every page dirty at <paramref name="pgsize"/>.</summary>
        public void AllDirty(ulong pgsize)
        {
            BitmapPgsize = pgsize;
            Dirty.Clear();
            for (ulong bit = 0; bit < Size / pgsize; bit++)
            {
                Dirty.Add(bit);
            }
        }
    }

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

    /// <summary>MAP_DMA by <paramref name="pid"/>: the checks in the kernel's order, then (with a domain) pinning
    /// chunk by chunk; without a domain nothing is pinned nor charged.</summary>
    public long Map(int pid, ulong iova, ulong vaddr, ulong size, bool read, bool write)
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
        ulong pages = size / Page;
        var reserved = new bool[pages];
        for (ulong i = 0; i < pages; i++)
        {
            reserved[i] = DifferentialRig.KindOf(vaddr + (i * Page)) == DifferentialRig.MemoryKind.Pfnmap;
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
            LockedVm[pid] = LockedVm.GetValueOrDefault(pid) + charged;
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

    /// <summary>SET_CONTAINER of group <paramref name="group"/> by <paramref name="caller"/>. The mdev's group is
    /// emulated: no domain, nothing checked. An IOMMU group: EINVAL when a mapping lies outside its aperture (the
    /// SMMU's 48 bits) or over one of its reserved regions; a group sharing an existing domain's IOMMU reuses it;
    /// a new domain is replayed — copied run by run from the existing domain (EINVAL when a physically contiguous
    /// run is not aligned to its page), or, without one, every mapping pinned now from the caller's mm and
    /// charged to its owner (EFAULT, ENOMEM, EINVAL as MAP), all or nothing.</summary>
    public long Attach(int group, int caller)
    {
        if (group == MdevGroup)
        {
            MdevAttached = true;
            return 0;
        }
        foreach (Mapping m in Mappings.Values)
        {
            if (group == 3 && (m.Last > DifferentialRig.SmmuApertureLast || Overlaps(m, DifferentialRig.SwMsiStart, DifferentialRig.SwMsiLast)))
            {
                return Errno.EINVAL.AsReturn();
            }
            if (group != 3 && DifferentialRig.AmdHoles.Any(h => Overlaps(m, h.Start, h.Last)))
            {
                return Errno.EINVAL.AsReturn();
            }
        }
        ulong oldPage = PageSize;
        bool reuse = group != 3 && (Groups.Contains(1) || Groups.Contains(2));
        if (!reuse && HasDomain && group == 3)
        {
            foreach (Mapping m in Mappings.Values)
            {
                if (!ReplayAligned(m, 0x10000))
                {
                    return Errno.EINVAL.AsReturn();
                }
            }
        }
        if (!HasDomain)
        {
            // Pin every mapping from the caller's mm; commit only once all succeeded.
            var frames = new List<(Mapping M, ulong[] Pfns, long Charged)>();
            var saved = new Dictionary<int, long>(LockedVm);
            foreach (Mapping m in Mappings.Values)
            {
                ulong[] pfns = FramesFrom(caller, m);
                Errno e = PinAndMap(caller, m, pfns, group == 3, out long charged);
                if (e != Errno.None)
                {
                    LockedVm.Clear();
                    foreach ((int pid, long v) in saved)
                    {
                        LockedVm[pid] = v;
                    }
                    return e.AsReturn();
                }
                LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) + charged;
                frames.Add((m, pfns, charged));
            }
            foreach ((Mapping m, ulong[] pfns, _) in frames)
            {
                m.Pfns = pfns;
                m.IommuMapped = true;
            }
        }
        Groups.Add(group);
        ResizeIfPageChanged(oldPage);
        return 0;
    }

    /// <summary>Group <paramref name="group"/> left the container. The last IOMMU domain going while the mdev stays
    /// re-accounts: every mapping unpinned and left charged only for its external pins. Leaving an IOMMU group
    /// (outside pinned-page scope) while tracking marks every page dirty.</summary>
    public void Detach(int group)
    {
        if (group == MdevGroup)
        {
            MdevAttached = false;
            return;
        }
        ulong oldPage = PageSize;
        Groups.Remove(group);
        if (!HasDomain)
        {
            foreach (Mapping m in Mappings.Values)
            {
                if (alive(m.Owner))
                {
                    LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) + m.Vpfns.Count - m.NonReserved;
                }
                m.IommuMapped = false;
                m.Pfns = [];
            }
        }
        if (Tracking)
        {
            foreach (Mapping m in Mappings.Values)
            {
                m.AllDirty(PageSize);
            }
        }
        ResizeIfPageChanged(oldPage);
    }

    /// <summary>The mdev's device was released: its driver unpins everything it pinned.</summary>
    public void MdevRelease()
    {
        foreach (Mapping m in Mappings.Values)
        {
            DropExternalPins(m);
        }
    }

    /// <summary>
    /// vfio_pin_pages from the mdev: the core's checks (EINVAL: count 0 or the device not open; E2BIG past 512
    /// pages), then type1's (EACCES on TYPE1, EOVERFLOW for a wrapping range), then page by page: EINVAL outside
    /// every mapping, EPERM for a prot beyond the mapping's, a page already pinned counted again, else pinned from
    /// the owner's mm: ENODEV when it exited, EFAULT for a hole or a read-only page of a writable mapping, EINVAL
    /// for a PFNMAP frame (no struct page), ENOMEM when charging it (only without a domain) passes RLIMIT_MEMLOCK.
    /// All or nothing; a new pin marks its page dirty while tracking. Returns the count or -errno.
    /// </summary>
    public long PinPages(ulong iova, int npage, bool read, bool write, bool deviceOpen)
    {
        if (npage == 0 || !deviceOpen)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (npage > PinPagesMax)
        {
            return Errno.E2BIG.AsReturn();
        }
        if (!v2)
        {
            return Errno.EACCES.AsReturn();
        }
        if (iova + (((ulong)npage * Page) - 1) < iova)
        {
            return Errno.EOVERFLOW.AsReturn();
        }
        var done = new List<(Mapping M, ulong Page, bool New, bool Charged)>();
        for (int i = 0; i < npage; i++)
        {
            ulong at = iova + ((ulong)i * Page);
            Errno e = PinOne(at, read, write, out (Mapping M, ulong Page, bool New, bool Charged) pinned);
            if (e != Errno.None)
            {
                for (int j = done.Count - 1; j >= 0; j--)
                {
                    (Mapping m, ulong page, bool isNew, bool charged) = done[j];
                    if (isNew)
                    {
                        m.Vpfns.Remove(page);
                        if (charged)
                        {
                            LockedVm[m.Owner]--;
                        }
                    }
                    else
                    {
                        (ulong pfn, uint refs) = m.Vpfns[page];
                        m.Vpfns[page] = (pfn, refs - 1);
                    }
                }
                return e.AsReturn();
            }
            done.Add(pinned);
        }
        return npage;
    }

    /// <summary>vfio_unpin_pages from the mdev: one count off each page's external pin (at zero the page is
    /// unpinned and, without a domain, un-charged), stopping at the first page outside every mapping. Returns
    /// whether the kernel would WARN (misuse, or a stop before the last page).</summary>
    public bool UnpinPages(ulong iova, int npage, bool deviceOpen)
    {
        if (!deviceOpen || npage <= 0 || npage > PinPagesMax || !v2 || iova + (((ulong)npage * Page) - 1) < iova)
        {
            return true;
        }
        for (int i = 0; i < npage; i++)
        {
            ulong at = iova + ((ulong)i * Page);
            Mapping? m = Find(at);
            if (m is null)
            {
                return true;
            }
            UnpinOne(m, m.PageOf(at));
        }
        return false;
    }

    /// <summary>
    /// vfio_dma_rw from the mdev of <paramref name="len"/> bytes at <paramref name="iova"/>, by a kernel thread
    /// (<paramref name="caller"/> null) or a process: EINVAL for no data or the device not open; then chunk by
    /// chunk, each up to the end of the mapping holding its first byte: EINVAL (no mapping), EPERM (a write to a
    /// mapping without WRITE, any access to one without READ, the owner gone), EFAULT (a process other than the
    /// owner, or the owner's memory faults: a hole, a write to read-only memory). A written chunk marks its pages
    /// dirty while tracking. Returns the errno and the chunks copied (owner, user address, offset in the buffer,
    /// length); chunks before a failing one stay copied.
    /// </summary>
    public (Errno Error, List<(int Pid, ulong Vaddr, int Offset, int Count)> Chunks) DmaRw(ulong iova, int len, bool write, int? caller, bool deviceOpen)
    {
        var chunks = new List<(int Pid, ulong Vaddr, int Offset, int Count)>();
        if (len == 0 || !deviceOpen)
        {
            return (Errno.EINVAL, chunks);
        }
        int done = 0;
        while (done < len)
        {
            // The kernel advances a u64 IOVA: past 2^64 it wraps to 0 and carries on there.
            ulong at = unchecked(iova + (ulong)done);
            Mapping? m = Find(at);
            if (m is null)
            {
                return (Errno.EINVAL, chunks);
            }
            if ((write && !m.Write) || !m.Read || !alive(m.Owner))
            {
                return (Errno.EPERM, chunks);
            }
            if (caller is int pid && pid != m.Owner)
            {
                return (Errno.EFAULT, chunks);
            }
            int count = (int)Math.Min((ulong)(len - done), m.Last - at + 1);
            ulong vaddr = m.Vaddr + (at - m.Iova);
            for (ulong p = vaddr & ~(Page - 1); p <= vaddr + (ulong)(count - 1); p += Page)
            {
                DifferentialRig.MemoryKind kind = DifferentialRig.KindOf(p);
                if (kind == DifferentialRig.MemoryKind.Hole || (write && kind == DifferentialRig.MemoryKind.ReadOnly))
                {
                    return (Errno.EFAULT, chunks);
                }
            }
            chunks.Add((m.Owner, vaddr, done, count));
            if (write && Tracking)
            {
                m.MarkDirty(at, at + (ulong)(count - 1));
            }
            done += count;
        }
        return (Errno.None, chunks);
    }

    /// <summary>Whether a device DMA of 8 bytes at <paramref name="iova"/> completes: the GPU's group is attached,
    /// a mapping covers it with the permission, and the page is RAM (another driver's MMIO that is no BAR answers
    /// unsupported request).</summary>
    public bool DmaCompletes(ulong iova, bool write)
    {
        if (!Groups.Contains(1))
        {
            return false;
        }
        foreach (Mapping m in Mappings.Values)
        {
            if (iova >= m.Iova && iova + 7 <= m.Last)
            {
                return (write ? m.Write : m.Read) && !m.Reserved[(iova - m.Iova) / Page];
            }
        }
        return false;
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

    private Errno PinOne(ulong iova, bool read, bool write, out (Mapping M, ulong Page, bool New, bool Charged) pinned)
    {
        pinned = default;
        Mapping? m = Find(iova);
        if (m is null)
        {
            return Errno.EINVAL;
        }
        if ((read && !m.Read) || (write && !m.Write))
        {
            return Errno.EPERM;
        }
        ulong page = m.PageOf(iova);
        if (m.Vpfns.TryGetValue(page, out (ulong Pfn, uint Refs) v))
        {
            m.Vpfns[page] = (v.Pfn, v.Refs + 1);
            pinned = (m, page, false, false);
            return Errno.None;
        }
        if (!alive(m.Owner))
        {
            return Errno.ENODEV;
        }
        ulong vaddr = m.Vaddr + (page * Page);
        if (!Pinnable(vaddr, m.Write))
        {
            return Errno.EFAULT;
        }
        if (m.Reserved[page])
        {
            return Errno.EINVAL;
        }
        bool charge = !HasDomain;
        if (charge)
        {
            if (LockedVm.GetValueOrDefault(m.Owner) + 1 > memlockPages)
            {
                return Errno.ENOMEM;
            }
            LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) + 1;
        }
        m.Vpfns[page] = (pfnOf(m.Owner, vaddr), 1);
        if (Tracking)
        {
            m.MarkDirty(iova, iova);
        }
        pinned = (m, page, true, charge);
        return Errno.None;
    }

    private void UnpinOne(Mapping m, ulong page)
    {
        if (!m.Vpfns.TryGetValue(page, out (ulong Pfn, uint Refs) v))
        {
            return;
        }
        if (v.Refs > 1)
        {
            m.Vpfns[page] = (v.Pfn, v.Refs - 1);
            return;
        }
        m.Vpfns.Remove(page);
        if (!HasDomain && alive(m.Owner))
        {
            LockedVm[m.Owner] = LockedVm.GetValueOrDefault(m.Owner) - 1;
        }
    }

    private void DropExternalPins(Mapping m)
    {
        foreach (ulong page in m.Vpfns.Keys.ToList())
        {
            while (m.Vpfns.ContainsKey(page))
            {
                UnpinOne(m, page);
            }
        }
    }

    private ulong[] FramesFrom(int pid, Mapping m)
    {
        var pfns = new ulong[m.Size / Page];
        for (ulong i = 0; i < (ulong)pfns.Length; i++)
        {
            pfns[i] = pfnOf(pid, m.Vaddr + (i * Page));
        }
        return pfns;
    }

    // vfio_pin_pages_remote and iommu_map, chunk by chunk. A chunk is a run of pages of one reserved-ness whose
    // frames are contiguous; each page without an external pin is counted against RLIMIT_MEMLOCK as the chunk
    // grows, with the caller's locked_vm (ENOMEM); then the chunk is charged to the owner (ENOMEM past its limit)
    // and mapped into the domain, which refuses a run not aligned to its smallest page (EINVAL: the 64 KiB SMMU
    // on a 4 KiB host). GUP stops short at a page it cannot pin; the refill there fails the whole chunk being
    // built (EFAULT) before it is mapped. Returns the pages charged to the owner; the caller commits them.
    private Errno PinAndMap(int caller, Mapping m, ulong[] pfns, bool align64k, out long charged)
    {
        charged = 0;
        ulong pages = m.Size / Page;
        long callerLocked = LockedVm.GetValueOrDefault(caller);
        long ownerLocked = LockedVm.GetValueOrDefault(m.Owner);
        ulong at = 0;
        while (at < pages)
        {
            if (!Pinnable(m.Vaddr + (at * Page), m.Write))
            {
                return Errno.EFAULT;
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
                if (at < pages && !Pinnable(m.Vaddr + (at * Page), m.Write))
                {
                    return Errno.EFAULT;
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

    private static bool Pinnable(ulong vaddr, bool write) => DifferentialRig.KindOf(vaddr) switch
    {
        DifferentialRig.MemoryKind.Hole => false,
        DifferentialRig.MemoryKind.ReadOnly => !write,
        _ => true,
    };

    // The valid IOVA list: every attached IOMMU group's aperture minus its reserved regions; without a domain
    // the list spans everything.
    private bool InsideWindows(ulong iova, ulong last)
    {
        if (Groups.Contains(3) && (last > DifferentialRig.SmmuApertureLast || (iova <= DifferentialRig.SwMsiLast && DifferentialRig.SwMsiStart <= last)))
        {
            return false;
        }
        if (Groups.Contains(1) || Groups.Contains(2))
        {
            foreach ((ulong start, ulong end) in DifferentialRig.AmdHoles)
            {
                if (iova <= end && start <= last)
                {
                    return false;
                }
            }
        }
        return true;
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
