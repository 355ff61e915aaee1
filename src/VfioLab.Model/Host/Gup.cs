using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// get_user_pages for long-term DMA pins (pin_user_pages_remote with FOLL_PIN | FOLL_LONGTERM):
/// faults pages in, breaks COW so every pinned private page belongs to this address space alone,
/// pins the frames and reports them as physically contiguous runs.
/// </summary>
/// <remarks>Stateless. The <c>...Locked</c> forms need the mmap lock of <c>mm</c> (read at least); the
/// others take it for read. Refuses, like GUP: holes (EFAULT), a write pin of read-only memory or a
/// pin of unreadable memory (EFAULT), VM_PFNMAP / VM_IO VMAs (EFAULT). Read-only pins of private
/// memory unshare COW pages, as FOLL_PIN does since v5.19 (gup_must_unshare), and the shared zero frame as
/// since v6.2 (84209e87c696) unless <see cref="GupBehavior.LongTermPinUnsharesZeroPage"/> is off: then an
/// untouched page is read-faulted to the zero frame and that is what the pin returns, one run entry per page,
/// with no pin count taken.</remarks>
internal static class Gup
{
    /// <summary>The kernel's batch: one page of pointers, PAGE_SIZE / 8 = 512 on a 4 KiB host.</summary>
    public const int DefaultBatchPages = 512;

    /// <summary>Pins up to <paramref name="maxPages"/> pages from <paramref name="start"/> (page-aligned),
    /// writing the frames as contiguous runs into <paramref name="runs"/> (consecutive runs are never
    /// physically adjacent: each break is a discontinuity). Stops at the first problem once at least one
    /// page is pinned, or when <paramref name="runs"/> is full. Returns the pages pinned (at least 1), or
    /// -EFAULT (hole, protection, PFNMAP), -ENOMEM (no frames, or the <c>pin</c> fault site).</summary>
    public static long PinUserPagesLocked(AddressSpace mm, HostVirtAddr start, ulong maxPages, bool write, Span<PfnRun> runs, out int runCount)
    {
        mm.AssertMmapLocked();
        runCount = 0;
        if (maxPages == 0 || runs.Length == 0)
        {
            return 0;
        }
        if (!mm.IsAlive)
        {
            return GupRefusals.DeadMm(mm.OwnerPid);
        }
        if (mm.Machine.Faults.ShouldFail(FaultSite.Pin))
        {
            return GupRefusals.Injected(start.Value);
        }
        return PinWalkLocked(mm, start, maxPages, write, runs, ref runCount);
    }

    /// <summary><see cref="PinUserPagesLocked(AddressSpace, HostVirtAddr, ulong, bool, Span{PfnRun}, out int)"/> of one
    /// page (<paramref name="runs"/> not empty): the same answers, pins, faults and trace event. A page already present
    /// and ready in a VMA that may be pinned (the 4 KiB MAP_DMA's usual case) is found with one VMA lookup, one PTE read
    /// and one frame pin; anything else (a hole, a refusal, a fault, the zero frame) goes through the general walk after
    /// the same checks, which answers as it would have from the start: nothing was changed before it.</summary>
    /// <remarks>Why (issue 16's 4 KiB pair): the general walk, with the page table's visitor and the fault path inlined
    /// into it, zeroed 720 bytes of its frame on every call and was ~100 ns of CPU for one page (perf of the pair,
    /// docs/benchmarks.md "pair9").</remarks>
    public static long PinUserPageLocked(AddressSpace mm, HostVirtAddr start, bool write, Span<PfnRun> runs, out int runCount)
    {
        mm.AssertMmapLocked();
        runCount = 0;
        if (runs.Length == 0)
        {
            return 0;
        }
        if (!mm.IsAlive)
        {
            return GupRefusals.DeadMm(mm.OwnerPid);
        }
        if (mm.Machine.Faults.ShouldFail(FaultSite.Pin))
        {
            return GupRefusals.Injected(start.Value);
        }
        Vma? vma = mm.FindVmaLocked(start);
        // The general walk's tests for this page: a VMA that may be pinned, and the PTE it needs (writable where the
        // walk requires it; the zero frame, which the walk may fault away or keep, is left to it).
        if (MayPin(vma, write) && mm.TryPinPresentPageLocked(start.Value >> mm.PageShift, NeedsWritablePte(vma, write), out Pfn pfn))
        {
            runs[0] = new PfnRun(pfn, 1);
            runCount = 1;
            if (mm.Machine.Trace.Enabled)
            {
                TracePin(mm, start, 1, 1, pfn, write);
            }
            return 1;
        }
        return PinWalkLocked(mm, start, 1, write, runs, ref runCount);
    }

    // Whether GUP may pin pages of `vma` (the walk's and the one-page lane's test): a VMA, not VM_PFNMAP / VM_IO,
    // writable for a write pin, readable for a read pin.
    private static bool MayPin([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] Vma? vma, bool write) =>
        vma is not null && !vma.IsPfnMapOrIo && (write ? vma.IsWritable : vma.IsReadable);

    // Whether a pin of `vma`'s page needs a writable PTE: a write pin, or a private writable page, which must be exclusive
    // to this mm before it is pinned (a writable private PTE is never shared).
    private static bool NeedsWritablePte(Vma vma, bool write) => write || (vma.PtesHoldRefs && vma.IsWritable);

    // The pin event of a GUP call, out of line: the hot callers do not trace.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void TracePin(AddressSpace mm, HostVirtAddr start, ulong pinned, int runCount, Pfn first, bool write) =>
        mm.Machine.Trace.Emit(TraceKind.Pin, mm.OwnerPid, TraceLog.F("vaddr", start.Value), TraceLog.F("pages", pinned),
            TraceLog.F("runs", runCount), TraceLog.F("pfn", first.Value), TraceLog.F("write", write));

    // PinUserPagesLocked after its checks of the call (the mm alive, the pin fault site): the walk VMA by VMA. Not
    // inlined: inlined into the one-page lane, its locals made that frame zero 272 bytes on every call.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long PinWalkLocked(AddressSpace mm, HostVirtAddr start, ulong maxPages, bool write, Span<PfnRun> runs, ref int runCount)
    {
        int shift = mm.PageShift;
        ulong pinned = 0;
        Errno error = Errno.None;
        ulong firstPage = start.Value >> shift;
        while (pinned < maxPages)
        {
            ulong page = firstPage + pinned;
            Vma? vma = mm.FindVmaLocked(new HostVirtAddr(page << shift));
            if (!MayPin(vma, write))
            {
                error = GupRefusals.Unpinnable(vma, page << shift, write);
                break;
            }
            ulong n = Math.Min(maxPages - pinned, vma.LastPage - page + 1);
            // Private pages must be exclusive to this mm before they are pinned: a write fault breaks COW, and a
            // read-only pin unshares (gup_must_unshare), the zero frame too unless the kernel pins it (6.1).
            bool needWritable = NeedsWritablePte(vma, write);
            FaultMode mode = write ? FaultMode.Write
                : !vma.PtesHoldRefs ? FaultMode.Read
                : mm.Machine.GupBehavior.LongTermPinUnsharesZeroPage ? FaultMode.Unshare : FaultMode.UnshareKeepZero;
            bool acceptZero = mode == FaultMode.UnshareKeepZero;
            // Pages already present (writable where that is needed: a writable private PTE is never
            // shared) pin without a fault, as the kernel's follow_page finds them; the fault starts at
            // the first page that is not ready.
            ulong got = mm.PinPresentLocked(page, n, needWritable, acceptZero, runs, ref runCount, out bool runsFull);
            pinned += got;
            if (got == n)
            {
                continue;
            }
            if (runsFull)
            {
                break;
            }
            ulong at = page + got;
            VmFaultResult fault = mm.FaultRangeLocked(vma, at, n - got, mode);
            // The fault works in address order, so after a failure the pages before it are ready:
            // pin them, as the kernel's page-by-page loop would have, then stop.
            ulong more = mm.PinPresentLocked(at, n - got, needWritable, acceptZero, runs, ref runCount, out runsFull);
            pinned += more;
            if (fault != VmFaultResult.Ok)
            {
                error = GupRefusals.FaultFailed(fault == VmFaultResult.Oom, at << shift);
                break;
            }
            if (more < n - got)
            {
                break;
            }
        }
        if (pinned == 0)
        {
            return (error == Errno.None ? Errno.EFAULT : error).AsReturn();
        }
        if (mm.Machine.Trace.Enabled)
        {
            TracePin(mm, start, pinned, runCount, runs[0].First, write);
        }
        return (long)pinned;
    }

    /// <summary><see cref="PinUserPagesLocked(AddressSpace, HostVirtAddr, ulong, bool, Span{PfnRun}, out int)"/>
    /// with the frames written page by page into <paramref name="pages"/> (the kernel's struct page batch);
    /// at most <c>pages.Length</c> pages are pinned.</summary>
    public static long PinUserPagesLocked(AddressSpace mm, HostVirtAddr start, bool write, Span<Pfn> pages)
    {
        mm.AssertMmapLocked();
        Span<PfnRun> runs = stackalloc PfnRun[16];
        long total = 0;
        while (total < pages.Length)
        {
            long got = PinUserPagesLocked(mm, start.Plus((ulong)total << mm.PageShift), (ulong)(pages.Length - total), write, runs, out int count);
            if (got <= 0)
            {
                return total > 0 ? total : got;
            }
            for (int i = 0; i < count; i++)
            {
                for (ulong k = 0; k < runs[i].Count; k++)
                {
                    pages[(int)total++] = runs[i].First.Plus(k);
                }
            }
        }
        return total;
    }

    /// <summary>Takes the mmap lock for read around
    /// <see cref="PinUserPagesLocked(AddressSpace, HostVirtAddr, ulong, bool, Span{PfnRun}, out int)"/>.</summary>
    public static long PinUserPages(AddressSpace mm, HostVirtAddr start, ulong maxPages, bool write, Span<PfnRun> runs, out int runCount)
    {
        mm.MmapReadLock();
        try
        {
            return maxPages == 1
                ? PinUserPageLocked(mm, start, write, runs, out runCount)
                : PinUserPagesLocked(mm, start, maxPages, write, runs, out runCount);
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    /// <summary>unpin_user_pages (or unpin_user_pages_dirty_lock when <paramref name="markDirty"/>) for a
    /// run of frames pinned through this class; the zero frame, never pinned, is left alone (as unpin_user_page
    /// ignores it since c8070b787519). Never fails.</summary>
    public static void UnpinUserPages(Machine machine, PfnRun run, bool markDirty, int pid = 0)
    {
        if (machine.Memory.IsZeroFrame(run.First))
        {
            System.Diagnostics.Debug.Assert(run.Count == 1, "a zero-frame entry covers one page");
            return;
        }
        machine.Memory.Unpin(run.First, run.Count, markDirty);
        if (machine.Trace.Enabled)
        {
            machine.Trace.Emit(TraceKind.Unpin, pid, TraceLog.F("pfn", run.First.Value), TraceLog.F("pages", run.Count), TraceLog.F("dirty", markDirty));
        }
    }

    /// <summary><see cref="UnpinUserPages(Machine, PfnRun, bool, int)"/> for each of <paramref name="runs"/>, with one
    /// acquisition of the frames' lock for all of them (<see cref="PhysicalMemory.UnpinRuns"/>); zero-frame entries are
    /// left alone. The same pins, dirty bits and trace events as one call per run.</summary>
    public static void UnpinUserPages(Machine machine, ReadOnlySpan<PfnRun> runs, bool markDirty, int pid = 0)
    {
        if (runs.Length == 1)
        {
            // One run (every 4 KiB unmap): the same end state through one update of each map instead of the batch's.
            machine.Memory.UnpinRun(runs[0], markDirty);
        }
        else
        {
            machine.Memory.UnpinRuns(runs, markDirty);
        }
        if (machine.Trace.Enabled)
        {
            foreach (PfnRun run in runs)
            {
                if (!machine.Memory.IsZeroFrame(run.First))
                {
                    machine.Trace.Emit(TraceKind.Unpin, pid, TraceLog.F("pfn", run.First.Value), TraceLog.F("pages", run.Count), TraceLog.F("dirty", markDirty));
                }
            }
        }
    }

    /// <summary>How many entries from the start of <paramref name="pfns"/> are physically contiguous
    /// (the length of the next chunk type1 may hand to one iommu_map call).</summary>
    public static int ContiguousPrefix(ReadOnlySpan<Pfn> pfns)
    {
        int n = pfns.IsEmpty ? 0 : 1;
        while (n < pfns.Length && pfns[n].Value == pfns[0].Value + (ulong)n)
        {
            n++;
        }
        return n;
    }
}
