using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// A process's address space (struct mm_struct): its VMAs and page table as run maps keyed by
/// virtual page, its users count, <c>locked_vm</c> and its mmap lock.
/// </summary>
/// <remarks>
/// Locks, in order: the mmap lock (<c>_mmapLock</c>, reader/writer, no recursion; mmap_lock) protects
/// <c>_vmas</c>, <see cref="LockedVm"/> and <see cref="ChargeLimitPages"/> (written only with it held for write, as
/// vfio_lock_acct does);
/// then any driver lock a fault handler takes; then <see cref="MappingSpace"/>'s lock; then the
/// page-table lock (<c>_ptGate</c>, the PTE spinlock) protecting <c>_pageTable</c> and
/// <c>_ptScratch</c>; then <see cref="SharedBacking"/>'s and <see cref="PhysicalMemory"/>'s locks.
/// Zapping takes only the page-table lock, so it may run from a driver holding its own locks.
/// <c>_users</c> and <c>_otherThreadHolds</c> are atomic. Never changing: <see cref="Machine"/>, <see cref="OwnerPid"/>,
/// <see cref="PageShift"/>. Methods ending in <c>Locked</c> need the mmap lock (read at least) and
/// throw when it is not held.
/// </remarks>
internal sealed partial class AddressSpace
{
    /// <summary>mmap_min_addr: the lowest address mmap hands out or accepts (EPERM below it for MAP_FIXED).</summary>
    public const ulong MmapMinAddr = 0x10000;

    /// <summary>TASK_SIZE of a 47-bit user address space.</summary>
    public const ulong TaskSize = 0x8000_0000_0000;

    /// <summary>mmap_base: top-down placement starts below this address (a fixed stack gap, no ASLR).</summary>
    public const ulong MmapBase = 0x7f00_0000_0000;

    // One word, not a ReaderWriterLockSlim: GUP, the charge and the uncharge take it in every MAP_DMA/UNMAP_DMA (see
    // OrderedRwSemaphore for the cost and why it is the same lock: readers share it, a writer excludes all, no recursion).
    private readonly OrderedRwSemaphore _mmapLock = new(LockRank.Mmap);
    private readonly OrderedLock _ptGate = new(LockRank.PageTable);
    private readonly RunMap<VmaSlot> _vmas = new();
    // The VMA FindVmaLocked found last (what the kernel's per-mm vmacache kept before v6.1): a 4 KiB MAP_DMA looks up
    // the VMA its page lies in, the same one call after call (issue 16's pair). Written by readers under the mmap lock
    // for read (a reference store is atomic, and any VMA written is one _vmas holds while that lock is held), forgotten
    // under the lock for write at every change of _vmas (ForgetFoundVma), so it is always a VMA _vmas holds.
    private Vma? _lastFoundVma;
    private readonly RunMap<Pte> _pageTable = new();
    private readonly List<Run<Pte>> _ptScratch = [];
    private readonly PhysicalMemory _memory;
    private int _users = 1;
    private ulong _lockedVm;
    private ulong _chargeLimit = ulong.MaxValue;
    // Files whose last VMA went under the mmap write lock: put when that lock is dropped (fput's task work).
    private List<OpenFile>? _deferredFputs;
    private int _otherThreadHolds;

    /// <summary>Creates an empty address space with one user.</summary>
    public AddressSpace(Machine machine, int ownerPid)
    {
        Machine = machine;
        OwnerPid = ownerPid;
        _memory = machine.Memory;
        PageShift = machine.PageShift;
    }

    /// <summary>The host the address space lives on.</summary>
    public Machine Machine { get; }

    /// <summary>The pid of the process that created it (mm->owner), for trace events.</summary>
    public int OwnerPid { get; }

    /// <summary>log2 of the host PAGE_SIZE.</summary>
    public int PageShift { get; }

    /// <summary>mm_users: the address space is alive while this is positive.</summary>
    public int Users => Volatile.Read(ref _users);

    /// <summary>Whether the address space still has users (not yet torn down by exit).</summary>
    public bool IsAlive => Users > 0;

    /// <summary>locked_vm in pages. Stays readable after the address space died. Wraps on underflow,
    /// so historical accounting bugs reproduce.</summary>
    public ulong LockedVm => Volatile.Read(ref _lockedVm);

    /// <summary>
    /// The RLIMIT_MEMLOCK (pages) in force for the task that last raised <see cref="LockedVm"/>, or
    /// <see cref="ulong.MaxValue"/> when it had CAP_IPC_LOCK or nothing was charged. Linux judges the limit only when
    /// charging, so this, not the owner's current limit, is what <c>locked-vm-within-limit</c> holds the counter to: a
    /// later setrlimit below a live charge is legal (the next charge fails ENOMEM).
    /// </summary>
    public ulong ChargeLimitPages => Volatile.Read(ref _chargeLimit);

    /// <summary>Adds <paramref name="deltaPages"/> (negative to subtract, wrapping as an unsigned counter) to
    /// <see cref="LockedVm"/>, charged by a task whose RLIMIT_MEMLOCK is <paramref name="limitPages"/>
    /// (<see cref="ulong.MaxValue"/> with CAP_IPC_LOCK). A change that raises the counter (a charge, or an un-charge
    /// that wraps) records that limit in <see cref="ChargeLimitPages"/>; one that lowers it keeps the recorded limit.
    /// The mmap lock must be held for write.</summary>
    public void AddLockedVmLocked(long deltaPages, ulong limitPages)
    {
        AssertMmapWriteLocked();
        ulong before = _lockedVm;
        ulong after = unchecked(before + (ulong)deltaPages);
        Volatile.Write(ref _lockedVm, after);
        if (after > before)
        {
            Volatile.Write(ref _chargeLimit, limitPages);
        }
    }

    /// <summary>mmget_not_zero: takes a user reference unless the address space is already dead.</summary>
    public bool TryGetUser()
    {
        int u = Volatile.Read(ref _users);
        while (u > 0)
        {
            int seen = Interlocked.CompareExchange(ref _users, u + 1, u);
            if (seen == u)
            {
                return true;
            }
            u = seen;
        }
        return false;
    }

    /// <summary>mmput: drops a user reference; the last one tears down every mapping (exit_mmap).</summary>
    public void PutUser()
    {
        int u = Interlocked.Decrement(ref _users);
        if (u < 0)
        {
            HostThrowHelper.ThrowInvalidOperation("mmput on a dead mm");
        }
        if (u == 0)
        {
            MmapWriteLock();
            try
            {
                RemoveRangeLocked(0, ulong.MaxValue >> PageShift, allowHugeSplit: true);
            }
            finally
            {
                MmapWriteUnlock();
            }
        }
    }

    /// <summary>mmap_read_lock.</summary>
    public void MmapReadLock() => _mmapLock.EnterReadLock();

    /// <summary>mmap_read_unlock.</summary>
    public void MmapReadUnlock() => _mmapLock.ExitReadLock();

    /// <summary>mmap_write_lock.</summary>
    public void MmapWriteLock() => _mmapLock.EnterWriteLock();

    /// <summary>mmap_write_unlock. Then drops the file references of VMAs removed under the lock: Linux's
    /// fput defers the last put to task work (run before the syscall returns), so a driver's release never
    /// runs under the mmap lock, where it could take VFIO locks that rank before it.</summary>
    public void MmapWriteUnlock()
    {
        List<OpenFile>? fputs = _deferredFputs;
        _deferredFputs = null;
        _mmapLock.ExitWriteLock();
        if (fputs is not null)
        {
            foreach (OpenFile f in fputs)
            {
                f.Put();
            }
        }
    }

    /// <summary>down_write_trylock: takes the mmap lock for write unless another simulated thread of the process
    /// holds it (<see cref="HoldMmapLockForOtherThread"/>); false, with nothing taken, when contended.</summary>
    public bool TryMmapWriteLock()
    {
        if (Volatile.Read(ref _otherThreadHolds) > 0)
        {
            return false;
        }
        _mmapLock.EnterWriteLock();
        return true;
    }

    /// <summary>Another thread of the process (a vCPU handling a page fault, say) takes the mmap lock for read and
    /// keeps it until <see cref="ReleaseMmapLockOfOtherThread"/>: the deterministic stand-in for contention. Only
    /// try-lockers see it (<see cref="TryMmapWriteLock"/>, <see cref="IsMmapLockContended"/>); a sleeping locker
    /// is modelled as getting the lock after the holder finished, and readers share it.</summary>
    public void HoldMmapLockForOtherThread() => Interlocked.Increment(ref _otherThreadHolds);

    /// <summary>The other thread drops its hold; false (and nothing changes) when no other thread holds the lock.</summary>
    public bool ReleaseMmapLockOfOtherThread()
    {
        int h = Volatile.Read(ref _otherThreadHolds);
        while (h > 0)
        {
            int seen = Interlocked.CompareExchange(ref _otherThreadHolds, h - 1, h);
            if (seen == h)
            {
                return true;
            }
            h = seen;
        }
        return false;
    }

    /// <summary>Whether another simulated thread holds the mmap lock now.</summary>
    public bool IsMmapLockContended => Volatile.Read(ref _otherThreadHolds) > 0;

    /// <summary>Whether the calling thread holds the mmap lock (read or write).</summary>
    public bool IsMmapLockHeld => _mmapLock.IsReadLockHeld || _mmapLock.IsWriteLockHeld;

    /// <summary>Whether the calling thread holds the mmap lock for write.</summary>
    public bool IsMmapWriteLockHeld => _mmapLock.IsWriteLockHeld;

    /// <summary>Throws unless the calling thread holds the mmap lock (mmap_assert_locked). Debug builds only, like
    /// <see cref="OrderedLock.AssertHeld"/> and the kernel's lockdep: asking a reader/writer lock whether
    /// this thread holds it reads thread-local state, and GUP and every charge ask (issue 16's 4 KiB pair).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertMmapLocked()
    {
        if (!IsMmapLockHeld)
        {
            HostThrowHelper.ThrowInvalidOperation("mmap lock not held");
        }
    }

    /// <summary>Throws unless the calling thread holds the mmap lock for write (mmap_assert_write_locked). Debug builds
    /// only (see <see cref="AssertMmapLocked"/>).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertMmapWriteLocked()
    {
        if (!IsMmapWriteLockHeld)
        {
            HostThrowHelper.ThrowInvalidOperation("mmap lock not held for write");
        }
    }

    /// <summary>The VMA containing <paramref name="address"/> (vma_lookup), or null.</summary>
    public Vma? FindVmaLocked(HostVirtAddr address)
    {
        AssertMmapLocked();
        ulong page = address.Value >> PageShift;
        Vma? last = _lastFoundVma;
        if (last is not null && page >= last.StartPage && page <= last.LastPage)
        {
            return last;
        }
        if (!_vmas.TryGetValue(page, out VmaSlot s))
        {
            return null;
        }
        _lastFoundVma = s.Vma;
        return s.Vma;
    }

    // Every change of _vmas calls this (under the mmap lock for write): FindVmaLocked's remembered VMA may be gone.
    private void ForgetFoundVma() => _lastFoundVma = null;

    /// <summary>A snapshot of the VMAs in address order.</summary>
    public List<Vma> SnapshotVmasLocked()
    {
        AssertMmapLocked();
        var list = new List<Vma>();
        foreach (Run<VmaSlot> r in _vmas.All())
        {
            if (list.Count == 0 || !ReferenceEquals(list[^1], r.Value.Vma))
            {
                list.Add(r.Value.Vma);
            }
        }
        return list;
    }

    /// <summary>The present PTE for <paramref name="address"/>, if any (a page walk; no fault).</summary>
    public bool TryTranslateLocked(HostVirtAddr address, out Pte pte)
    {
        AssertMmapLocked();
        using (_ptGate.EnterScope())
        {
            return _pageTable.TryGetValue(address.Value >> PageShift, out pte);
        }
    }

    /// <summary>Number of present pages in <c>[first, first + count)</c> (pages, not runs).</summary>
    public ulong PresentPagesLocked(HostVirtAddr first, ulong count)
    {
        AssertMmapLocked();
        ulong p = first.Value >> PageShift;
        ulong n = 0;
        using (_ptGate.EnterScope())
        {
            foreach (Run<Pte> r in _pageTable.Overlapping(p, p + count - 1))
            {
                n += r.Span + 1;
            }
        }
        return n;
    }

    /// <summary>Inserts present PTEs for <paramref name="count"/> pages from <paramref name="address"/> mapping
    /// <paramref name="pfn"/> onwards (vmf_insert_pfn, remap_pfn_range, io_remap_pfn_range), replacing any present
    /// ones. For drivers' fault handlers and mmap. Needs the mmap lock. Returns EINVAL when the range is
    /// unaligned or leaves the VMA. The entry is writable only if the VMA is.</summary>
    public Errno InsertPfnsLocked(Vma vma, HostVirtAddr address, Pfn pfn, ulong count, bool writable)
    {
        AssertMmapLocked();
        ulong page = address.Value >> PageShift;
        if (count == 0 || !address.IsAligned(1UL << PageShift) || page < vma.StartPage || page > vma.LastPage ||
            count - 1 > vma.LastPage - page || !ReferenceEquals(vma.Mm, this))
        {
            return Refusals.Refuse(Errno.EINVAL, "remap_pfn_range", "[0x{0:x}, +{1} pages) does not fit the VMA", address.Value, count);
        }
        using (_ptGate.EnterScope())
        {
            _pageTable.Set(page, page + count - 1, new Pte(pfn, writable && vma.IsWritable));
        }
        return Errno.None;
    }

    /// <summary>Removes the present PTEs of <paramref name="count"/> pages of <paramref name="vma"/> from
    /// <paramref name="firstPage"/> (zap_vma_ptes), dropping the frame references private pages hold (the zero
    /// frame's PTEs hold none).
    /// Needs only the page-table lock, which it takes. Returns the pages that were present.</summary>
    public ulong ZapPtes(Vma vma, ulong firstPage, ulong count)
    {
        if (count == 0)
        {
            return 0;
        }
        ulong last = Math.Min(firstPage + count - 1, vma.LastPage);
        ulong zapped = 0;
        using (_ptGate.EnterScope())
        {
            _ptScratch.Clear();
            foreach (Run<Pte> r in _pageTable.Overlapping(Math.Max(firstPage, vma.StartPage), last))
            {
                _ptScratch.Add(r);
            }
            foreach (Run<Pte> r in _ptScratch)
            {
                _pageTable.Remove(r.Start, r.Last);
                zapped += r.Span + 1;
                if (vma.PtesHoldRefs && !r.Value.ZeroPage)
                {
                    _memory.DropRefs(new PfnRun(r.Value.Pfn, r.Span + 1));
                }
            }
        }
        if (zapped != 0 && Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Zap, OwnerPid, TraceLog.F("vaddr", firstPage << PageShift), TraceLog.F("pages", zapped));
        }
        return zapped;
    }

    // Adds a VMA over free virtual pages, taking the references it holds (file, backing, i_mmap).
    internal Vma InsertVmaLocked(Vma vma)
    {
        AssertMmapWriteLocked();
        if (_vmas.Overlaps(vma.StartPage, vma.LastPage))
        {
            HostThrowHelper.ThrowInvalidOperation($"insert {vma}: overlaps an existing VMA");
        }
        vma.File?.Get();
        vma.Backing?.Attach();
        vma.Mapping?.Add(vma);
        _vmas.Set(vma.StartPage, vma.LastPage, new VmaSlot(vma));
        ForgetFoundVma();
        return vma;
    }

    // Unmaps [firstPage, lastPage]: zaps PTEs, splits VMAs that straddle the ends. Unless the caller
    // checked already (CheckSplitsLocked) or this is teardown (allowHugeSplit), the splits are checked
    // first: EINVAL or ENOMEM, with nothing changed. A removed VMA's file reference is put by
    // MmapWriteUnlock.
    internal Errno RemoveRangeLocked(ulong firstPage, ulong lastPage, bool allowHugeSplit = false, bool splitsChecked = false)
    {
        AssertMmapWriteLocked();
        List<Vma> victims = VictimsLocked(firstPage, lastPage);
        if (!allowHugeSplit && !splitsChecked)
        {
            Errno e = CheckSplitsLocked(firstPage, lastPage, victims);
            if (e != Errno.None)
            {
                return e;
            }
        }
        foreach (Vma v in victims)
        {
            ulong from = Math.Max(firstPage, v.StartPage);
            ulong to = Math.Min(lastPage, v.LastPage);
            ZapPtes(v, from, to - from + 1);
            _vmas.Remove(from, to);
            ForgetFoundVma();
            if (from > v.StartPage)
            {
                Vma head = v.Slice(v.StartPage, from - 1);
                ReplaceSliceLocked(head);
            }
            if (to < v.LastPage)
            {
                Vma tail = v.Slice(to + 1, v.LastPage);
                ReplaceSliceLocked(tail);
            }
            v.Operations?.Close(v);
            v.Mapping?.Remove(v);
            v.Backing?.Detach();
            if (v.File is not null)
            {
                (_deferredFputs ??= []).Add(v.File);
            }
        }
        return Errno.None;
    }

    /// <summary>The VMAs overlapping [<paramref name="firstPage"/>, <paramref name="lastPage"/>], in address order.</summary>
    private List<Vma> VictimsLocked(ulong firstPage, ulong lastPage)
    {
        _mmapLock.AssertWriteHeld();
        var victims = new List<Vma>();
        foreach (Run<VmaSlot> r in _vmas.Overlapping(firstPage, lastPage))
        {
            if (victims.Count == 0 || !ReferenceEquals(victims[^1], r.Value.Vma))
            {
                victims.Add(r.Value.Vma);
            }
        }
        return victims;
    }

    /// <summary>
    /// The fallible half of unmapping [<paramref name="firstPage"/>, <paramref name="lastPage"/>]: each VMA that
    /// straddles an end must be split (__split_vma), the start first, then the end (twice for one VMA
    /// straddling both). A hugetlb VMA refuses a split off a huge-page boundary (EINVAL, its may_split); the
    /// new VMA's allocation is fault site <c>split_vma</c> (ENOMEM). Nothing changes here, so a failure leaves the
    /// address space as it was; Linux may keep a split it already made, which no user can tell apart.
    /// </summary>
    internal Errno CheckSplitsLocked(ulong firstPage, ulong lastPage, List<Vma>? victims = null)
    {
        AssertMmapWriteLocked();
        victims ??= VictimsLocked(firstPage, lastPage);
        if (victims.Count == 0)
        {
            return Errno.None;
        }
        Errno e = victims[0].StartPage < firstPage ? CheckSplit(victims[0], firstPage) : Errno.None;
        if (e == Errno.None && lastPage < victims[^1].LastPage)
        {
            e = CheckSplit(victims[^1], lastPage + 1);
        }
        return e;
    }

    private Errno CheckSplit(Vma vma, ulong atPage)
    {
        ulong g = vma.HugePages;
        if (g > 1 && (atPage & (g - 1)) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "split_vma", "page 0x{0:x} splits a huge page of the VMA", atPage);
        }
        return Machine.Faults.ShouldFail(FaultSite.SplitVma) ? Refusals.Refuse(Errno.ENOMEM, "split_vma", "allocating the VMA failed (injected)") : Errno.None;
    }

    private void ReplaceSliceLocked(Vma slice)
    {
        _mmapLock.AssertWriteHeld();
        _vmas.Remove(slice.StartPage, slice.LastPage);
        ForgetFoundVma();
        InsertVmaLocked(slice);
        slice.Operations?.Open(slice);
    }
}
