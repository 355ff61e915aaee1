using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

// dup_mmap + copy_page_range. Private pages become copy-on-write in both processes, except frames
// that are DMA-pinned: those are copied for the child at once and the parent keeps its mapping
// writable, so a device keeps DMAing into the page the parent sees. This is Linux >= 5.9's "early COW
// for pinned pages" (commit 70e806e4e645, "mm: Do early cow for pinned pages during fork() for ptes",
// and 4eae4efa2c29, "hugetlb: do early cow when page pinned on src mm", for hugetlb). Linux gates the
// test on MMF_HAS_PINNED and page_maybe_dma_pinned; the model tests the exact pin count.
// Shared (shmem, shared hugetlb) and PFNMAP mappings are shared: the child gets the same pfns.
internal sealed partial class AddressSpace
{
    // Copies every VMA and PTE into the empty child. Needs this mmap lock for write. Returns ENOMEM
    // when an eager copy cannot get frames; the caller then tears the child down.
    internal Errno DuplicateIntoLocked(AddressSpace child)
    {
        AssertMmapWriteLocked();
        // mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING): the child is not published yet.
        child._mmapLock.EnterWriteLockNested();
        try
        {
            foreach (Vma vma in SnapshotVmasLocked())
            {
                if ((vma.Flags & VmFlags.DontCopy) != 0)
                {
                    continue;
                }
                Vma copy = child.InsertVmaLocked(vma.CloneInto(child));
                copy.Operations?.Open(copy);
                Errno e = CopyPtesLocked(vma, child);
                if (e != Errno.None)
                {
                    return e;
                }
            }
            return Errno.None;
        }
        finally
        {
            child.MmapWriteUnlock();
        }
    }

    private Errno CopyPtesLocked(Vma vma, AddressSpace child)
    {
        _mmapLock.AssertWriteHeld();
        using (_ptGate.EnterScope())
        {
            _ptScratch.Clear();
            foreach (Run<Pte> r in _pageTable.Overlapping(vma.StartPage, vma.LastPage))
            {
                _ptScratch.Add(r);
            }
            Run<Pte>[] runs = [.. _ptScratch];
            foreach (Run<Pte> r in runs)
            {
                // Shared mappings keep their frames; zero-frame PTEs are copied as they are (no reference, no COW:
                // both sides already copy away from the zero frame on their first write).
                if (!vma.PtesHoldRefs || r.Value.ZeroPage)
                {
                    using (child._ptGate.EnterScopeNested())
                    {
                        child._pageTable.Set(r.Start, r.Last, r.Value);
                    }
                    continue;
                }
                Errno e = CopyPrivateRunLocked(vma, child, r);
                if (e != Errno.None)
                {
                    return e;
                }
            }
        }
        return Errno.None;
    }

    private Errno CopyPrivateRunLocked(Vma vma, AddressSpace child, Run<Pte> r)
    {
        _ptGate.AssertHeld();
        ulong g = vma.HugePages;
        ulong count = r.Span + 1;
        ulong off = 0;
        while (off < count)
        {
            Pfn src = r.Value.Pfn.Plus(off);
            ulong len = _memory.PinnedPrefix(src, count - off, out bool pinned);
            if (g > 1)
            {
                // A huge page is copied early when any of its frames is pinned.
                pinned = _memory.PinnedPrefix(src, g, out bool firstPinned) < g || firstPinned;
                len = g;
            }
            ulong page = r.Start + off;
            if (!pinned)
            {
                _memory.AddRefs(new PfnRun(src, len));
                _pageTable.Set(page, page + len - 1, new Pte(src, false));
                using (child._ptGate.EnterScopeNested())
                {
                    child._pageTable.Set(page, page + len - 1, new Pte(src, false));
                }
                off += len;
                continue;
            }
            ulong copied = 0;
            while (copied < len)
            {
                PfnRun dst;
                if (g > 1)
                {
                    if (!_memory.TryAllocateHuge(g, out Pfn block))
                    {
                        return Refusals.Refuse(Errno.ENOMEM, "copy_page_range", "no free huge page to copy a pinned page into");
                    }
                    dst = new PfnRun(block, g);
                }
                else if (!_memory.TryAllocateRun(len - copied, out dst))
                {
                    return Refusals.Refuse(Errno.ENOMEM, "copy_page_range", "no free frames to copy pinned pages into");
                }
                _memory.CopyFrames(src.Plus(copied), dst.First, dst.Count);
                using (child._ptGate.EnterScopeNested())
                {
                    child._pageTable.Set(page + copied, page + copied + dst.Count - 1, new Pte(dst.First, vma.IsWritable));
                }
                copied += dst.Count;
            }
            off += len;
        }
        return Errno.None;
    }
}
