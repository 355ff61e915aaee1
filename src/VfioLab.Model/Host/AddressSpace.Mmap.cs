using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

// mmap and munmap (mm/mmap.c: do_mmap, get_unmapped_area, do_munmap). Placement is deterministic:
// top-down first fit below MmapBase (the default mmap layout without ASLR), aligned to the huge page
// size for hugetlb; a non-MAP_FIXED hint is honoured when the aligned range is free.
internal sealed partial class AddressSpace
{
    private const int MapHugeShift = 26;
    private const int MapHugeMask = 0x3f;

    /// <summary>mmap of anonymous memory: private, shared (shmem) or hugetlb (MAP_HUGETLB with
    /// MAP_HUGE_2MB or MAP_HUGE_1GB; no size bits means 2 MiB). Returns the address or -EINVAL (length 0,
    /// not exactly one of MAP_SHARED/MAP_PRIVATE, unaligned MAP_FIXED address, unknown huge size),
    /// -EPERM (MAP_FIXED below mmap_min_addr) or -ENOMEM (no room, length overflow, fault sites
    /// <c>split_vma</c> and <c>vm_area_alloc</c>: nothing changed, old mappings kept). A hugetlb length
    /// is rounded up to the huge page size, as ksys_mmap_pgoff does. MAP_POPULATE faults everything in
    /// and, as mm_populate, ignores failures.</summary>
    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags)
    {
        if (!IsAlive)
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "do_mmap", "the mm of process {0} is gone", (ulong)OwnerPid);
        }
        ulong hugePages = 1;
        bool hugetlb = (flags & MmapFlags.HugeTlb) != 0;
        if (hugetlb)
        {
            int log = ((int)flags >> MapHugeShift) & MapHugeMask;
            if (log == 0)
            {
                log = 21;
            }
            if ((log != 21 && log != 30) || log < PageShift)
            {
                return Refusals.RefuseReturn(Errno.EINVAL, "hugetlb_get_unmapped_area", "huge page order {0} is not 2 MiB or 1 GiB (or is below PAGE_SIZE)", (ulong)log);
            }
            hugePages = 1UL << (log - PageShift);
            ulong huge = hugePages << PageShift;
            if (length == 0)
            {
                return Refusals.RefuseReturn(Errno.EINVAL, "do_mmap", "length is 0");
            }
            if (length > ulong.MaxValue - (huge - 1))
            {
                return Refusals.RefuseReturn(Errno.ENOMEM, "do_mmap", "length 0x{0:x} cannot be rounded up to a huge page", length);
            }
            length = (length + huge - 1) & ~(huge - 1);
        }
        bool shared = (flags & MmapFlags.Shared) != 0;
        VmaKind kind = hugetlb ? VmaKind.HugeTlb : shared ? VmaKind.SharedAnonymous : VmaKind.Anonymous;
        MmapWriteLock();
        try
        {
            long start = PrepareMmapLocked(address, length, flags, hugePages, out ulong pages);
            if (start < 0)
            {
                return start;
            }
            ulong first = (ulong)start >> PageShift;
            SharedBacking? backing = shared ? new SharedBacking(_memory, hugePages) : null;
            var vma = new Vma(this, first, first + pages - 1, ToVmFlags(protection, shared) | (hugetlb ? VmFlags.HugeTlb : 0),
                kind, 0, hugePages, null, null, null, null, backing, false);
            InsertVmaLocked(vma);
            TraceMmap(vma);
            if ((flags & MmapFlags.Populate) != 0)
            {
                FaultRangeLocked(vma, vma.StartPage, vma.PageCount, vma.IsWritable);
            }
            return start;
        }
        finally
        {
            MmapWriteUnlock();
        }
    }

    /// <summary>Maps another driver's MMIO (remap_pfn_range at mmap: VM_PFNMAP|VM_IO|VM_SHARED, vm_pgoff = the
    /// first pfn), populated at once. With <paramref name="refcounted"/> the pfns are ordinary RAM pages
    /// (allocated contiguously, owned by the mapping) instead of <paramref name="mmioFirst"/>.
    /// Returns the address or -errno as <see cref="Mmap"/>, or -ENOMEM when the RAM is short.</summary>
    public long MmapOtherMmio(ulong address, ulong length, MemoryProtection protection, bool fixedAddress, bool refcounted, Pfn mmioFirst)
    {
        if (!IsAlive)
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "do_mmap", "the mm of process {0} is gone", (ulong)OwnerPid);
        }
        MmapFlags flags = MmapFlags.Shared | (fixedAddress ? MmapFlags.Fixed : 0);
        MmapWriteLock();
        try
        {
            long start = PrepareMmapLocked(address, length, flags, 1, out ulong pages);
            if (start < 0)
            {
                return start;
            }
            SharedBacking? backing = null;
            Pfn first = mmioFirst;
            if (refcounted)
            {
                if (!_memory.TryAllocateBlock(pages, 1, out first))
                {
                    return Refusals.RefuseReturn(Errno.ENOMEM, "remap_pfn_range", "no {0} free frames for the mapping", pages);
                }
                backing = new SharedBacking(_memory, 1);
                backing.Adopt(first.Value, new PfnRun(first, pages));
            }
            ulong vpage = (ulong)start >> PageShift;
            var vma = new Vma(this, vpage, vpage + pages - 1,
                ToVmFlags(protection, true) | VmFlags.PfnMap | VmFlags.Io | VmFlags.DontExpand | VmFlags.DontDump,
                VmaKind.OtherMmio, first.Value, 1, null, null, null, null, backing, false);
            InsertVmaLocked(vma);
            using (_ptGate.EnterScope())
            {
                _pageTable.Set(vpage, vpage + pages - 1, new Pte(first, vma.IsWritable));
            }
            TraceMmap(vma);
            return start;
        }
        finally
        {
            MmapWriteUnlock();
        }
    }

    /// <summary>munmap: unmaps every page of <c>[address, address + length)</c>, splitting VMAs that
    /// straddle the ends; holes are fine. Returns 0, or -EINVAL for an unaligned address, length 0, a
    /// range past TASK_SIZE, or a split of a hugetlb VMA off a huge page boundary, or -ENOMEM when a split
    /// cannot allocate its new VMA (fault site <c>split_vma</c>); a failure changes nothing.</summary>
    public int Munmap(ulong address, ulong length)
    {
        ulong pageMask = (1UL << PageShift) - 1;
        if ((address & pageMask) != 0 || length == 0 || length > TaskSize || address > TaskSize - length)
        {
            return (int)Refusals.RefuseReturn(Errno.EINVAL, "do_vmi_munmap", "[0x{0:x}, +0x{1:x}) is not page-aligned, empty or past TASK_SIZE", address, length);
        }
        if (!IsAlive)
        {
            return 0;
        }
        ulong pages = (length + pageMask) >> PageShift;
        ulong first = address >> PageShift;
        MmapWriteLock();
        try
        {
            Errno e = RemoveRangeLocked(first, first + pages - 1);
            if (e != Errno.None)
            {
                return (int)e.AsReturn();
            }
        }
        finally
        {
            MmapWriteUnlock();
        }
        if (Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Munmap, OwnerPid, TraceLog.F("vaddr", address), TraceLog.F("size", length));
        }
        return 0;
    }

    // The checks and placement of do_mmap; unmaps the old range for MAP_FIXED. Returns the start
    // address or -errno, and the length in pages.
    internal long PrepareMmapLocked(ulong address, ulong length, MmapFlags flags, ulong hugePages, out ulong pages)
    {
        AssertMmapWriteLocked();
        pages = 0;
        ulong pageMask = (1UL << PageShift) - 1;
        if (length == 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "do_mmap", "length is 0");
        }
        bool shared = (flags & MmapFlags.Shared) != 0;
        bool priv = (flags & MmapFlags.Private) != 0;
        if (shared == priv)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "do_mmap", "flags 0x{0:x}: exactly one of MAP_SHARED and MAP_PRIVATE", (ulong)flags);
        }
        if (length > TaskSize)
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "do_mmap", "length 0x{0:x} is over TASK_SIZE", length);
        }
        pages = (length + pageMask) >> PageShift;
        ulong size = pages << PageShift;
        ulong align = hugePages << PageShift;
        if ((flags & MmapFlags.Fixed) != 0)
        {
            if ((address & (align - 1)) != 0)
            {
                return Refusals.RefuseReturn(Errno.EINVAL, "do_mmap", "MAP_FIXED address 0x{0:x} is not aligned to 0x{1:x}", address, align);
            }
            if (address > TaskSize - size)
            {
                return Refusals.RefuseReturn(Errno.ENOMEM, "do_mmap", "MAP_FIXED [0x{0:x}, +0x{1:x}) passes TASK_SIZE", address, size);
            }
            if (address < MmapMinAddr)
            {
                return Refusals.RefuseReturn(Errno.EPERM, "do_mmap", "MAP_FIXED address 0x{0:x} is below mmap_min_addr 0x{1:x}", address, MmapMinAddr);
            }
            // mmap_region: the old mappings are gathered (split) first, then the new VMA allocated; a
            // failure of either restores the old ones, so the range is only unmapped once both succeeded.
            ulong firstPage = address >> PageShift;
            Errno e = CheckSplitsLocked(firstPage, firstPage + pages - 1);
            if (e == Errno.None && Machine.Faults.ShouldFail(FaultSite.VmAreaAlloc))
            {
                e = Refusals.Refuse(Errno.ENOMEM, "vm_area_alloc", "allocating the VMA failed (injected)");
            }
            if (e == Errno.None)
            {
                e = RemoveRangeLocked(firstPage, firstPage + pages - 1, splitsChecked: true);
            }
            return e == Errno.None ? (long)address : e.AsReturn();
        }
        ulong hint = address & ~(align - 1);
        long placed = hint != 0 && hint >= MmapMinAddr && hint <= TaskSize - size &&
            !_vmas.Overlaps(hint >> PageShift, (hint >> PageShift) + pages - 1)
            ? (long)hint
            : FindGapTopDownLocked(size, align, out ulong start) ? (long)start : Refusals.RefuseReturn(Errno.ENOMEM, "get_unmapped_area", "no free gap of 0x{0:x} bytes below TASK_SIZE", size);
        return placed >= 0 && Machine.Faults.ShouldFail(FaultSite.VmAreaAlloc) ? Refusals.RefuseReturn(Errno.ENOMEM, "vm_area_alloc", "allocating the VMA failed (injected)") : placed;
    }

    private bool FindGapTopDownLocked(ulong size, ulong align, out ulong start)
    {
        _mmapLock.AssertHeld();
        start = 0;
        ulong limit = MmapBase;
        while (limit >= size && limit - size >= MmapMinAddr)
        {
            ulong candidate = (limit - size) & ~(align - 1);
            if (candidate < MmapMinAddr)
            {
                return false;
            }
            ulong firstPage = candidate >> PageShift;
            ulong lastPage = ((candidate + size) >> PageShift) - 1;
            if (!_vmas.TryGetAtOrBefore(lastPage, out Run<VmaSlot> below) || below.Last < firstPage)
            {
                start = candidate;
                return true;
            }
            limit = below.Value.Vma.StartPage << PageShift;
        }
        return false;
    }

    private static VmFlags ToVmFlags(MemoryProtection protection, bool shared)
    {
        VmFlags f = VmFlags.None;
        if ((protection & MemoryProtection.Read) != 0)
        {
            f |= VmFlags.Read;
        }
        if ((protection & MemoryProtection.Write) != 0)
        {
            // x86 and arm64 make every writable mapping readable.
            f |= VmFlags.Write | VmFlags.Read;
        }
        if ((protection & MemoryProtection.Exec) != 0)
        {
            f |= VmFlags.Exec;
        }
        return shared ? f | VmFlags.Shared : f;
    }

    internal void TraceMmap(Vma vma)
    {
        if (Machine.Trace.Enabled)
        {
            Machine.Trace.Emit(TraceKind.Mmap, OwnerPid, TraceLog.F("vaddr", vma.Start.Value), TraceLog.F("pages", vma.PageCount),
                TraceLog.F("vma", vma.Kind.ToString()), TraceLog.F("flags", (ulong)vma.Flags), TraceLog.F("pgoff", vma.VmPgoff));
        }
    }
}
