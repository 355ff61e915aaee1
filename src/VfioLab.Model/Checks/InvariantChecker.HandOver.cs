using System.Diagnostics.CodeAnalysis;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;

namespace VfioLab.Checks;

// The check after a MAP_DMA of one page that linked its mapping, from what the MAP handed over and nothing else
// (issue 16: checking after every call at most 1.3x no checking on 65,535 single-page MAP_DMA calls).
//
// Measured on that workload (docs/benchmarks.md, 2026-12-07, branch checks2), cutting the check off stage by stage: the
// check that reads the call's window where it is (TryCheckHandedOver: the container's lock, one walk up the DMA tree,
// the first domain's runs under its lock, the frame's pin under host memory's lock, the totals) cost about 1.8x; what
// comes before it (gates, journal, hook) and the final sweep 1.25x; the container's lock alone 0.09x more, the walk up
// the tree about 0.15x, the two other locks and their reads 0.15x. A check that reads again what the call just wrote
// cannot be 1.3x of the call.
//
// So a MAP of one page hands over, as its last act under the container's lock (Type1Context.DeclareLinked), the mapping
// it linked and how many times each lock guarding what it wrote had been taken by then: the container's (the DMA tree,
// the mappings, the counters), its domains' page tables' (the IOPTEs, pending invalidations) and host memory's (the pin,
// free and reference maps). Every writer of that state holds one of those locks, and taking a lock bumps its count
// (OrderedLock.EntriesForCheck): if the counts are the same now, nothing was written since the hand-over, so what the
// MAP left is what there is. The MAP also records the counts when it takes the container's lock
// (Type1Context.NoteCallStartLocked), and each check that found the state consistent records them as it leaves them
// (RecordEntries): when those agree, nothing was written between the last check and the call either. The container's
// configuration the check needs is the view the last check read under the lock (ContainerTotals.View), which only a
// holder of the container's lock can change, so the check itself takes no lock. The check then holds the MAP to what it handed over, exactly as the in-place pass would:
// the mapping sound (its extent, size, alignment, IOVA window, dirty bitmap, iommu_mapped, no external pins), every page
// charged (locked_vm = its pages: each a pinned RAM page that is not reserved, since type1 charges only those; a MAP that
// met a reserved or device page charges less and is read in place), and the totals moved by that mapping (dma_avail,
// the counts, the mm's locked_vm and its limit, the host's pins outstanding against the backends' pins). A mapping
// without domains has no translation and no pin, so nothing is taken on trust there.
//
// What is taken on trust is the MAP's own writing of its one IOPTE run, its one pin and its tree link: a model bug in
// those paths (a wrong frame or protection written, a link that breaks the tree) is reported by the next full sweep — the
// one at the end of every checked run, or on demand — not by this check (InvariantCheckerHandOverTests says so). Anything
// else falls back to the reading in place (TryCheckHandedOver, then the windowed pass and snapshot) with the full sweep's
// messages: a count that moved (a test hook or any other writer after the call), more than one domain, a mapping of more
// than one page (its frames could alias; its reading is proportional to what the MAP did), a dead mm, devices taking
// part. Writes that take no lock at all (a field set behind the model's back) bump no count: the full sweep finds them.
internal sealed partial class InvariantChecker
{
    /// <summary>How many checks after a MAP_DMA used its hand-over counts alone, without reading its page tables or
    /// pins again (for tests and benchmarks).</summary>
    internal long TrustedHandOverChecks { get; private set; }

    // False when the hand-over cannot be used: the caller then reads the call as before. True with result set otherwise.
    // No lock is taken: the lock entry counts prove that nobody but the MAP took the container's, its page table's or
    // host memory's lock since the last check (a lock round trip was about a tenth of the call, issue 16), and what the
    // check reads of the container's configuration (domains, IOVA windows, tracking, page sizes, groups) is the view the
    // last check took under the lock (ContainerTotals.View), which only a holder of the container's lock can change.
    private bool TryCheckByHandOver(Totals totals, ContainerTotals ct, ByteRange changed, [NotNullWhen(true)] out IReadOnlyList<InvariantViolation>? result)
    {
        result = null;
        if (!ct.ViewKnown)
        {
            return false;
        }
        VfioIommu iommu = ct.Iommu;
        PhysicalMemory memory = host.Machine.Memory;
        int entries = iommu.CheckLock.EntriesForCheck;
        (VfioDma? linked, HandOverEntries e, HandOverEntries start) = iommu.HandOverUnlockedForCheck;
        HandOverEntries last = ct.CheckedEntries;
        IommuDomain? first = ct.View.First;
        // Nobody took the container's lock between the last check and the MAP (the MAP's enter is the one more), nor after
        // the MAP's hand-over; nor the page table's or host memory's locks between the last check and the MAP's start,
        // or after the MAP's hand-over.
        if (entries != e.Container || start.Container != unchecked(last.Container + 1) || start.Domains != last.Domains
            || start.Memory != totals.CheckedMemory || memory.LockEntriesForCheck != e.Memory
            || linked is not { } d || d.Range.Start != changed.Start || d.Range.Last != changed.Last || !d.Mm.IsAlive)
        {
            return false;
        }
        ulong pages = d.Size >> host.Machine.PageShift;
        if (first is not null && (pages != 1 || first.LockEntriesForCheck != e.Domains || first.HasPendingInvalidationsUnlockedForCheck))
        {
            return false;
        }
        // The in-place pass's test of the mapping itself (its gaps are not read: nothing but the MAP wrote the page table).
        if (!MappingSound(in ct.View, d, new Run<DmaRef>(d.Range.Start, d.Last, new DmaRef(d))))
        {
            return false;
        }
        ulong chargeable = first is null ? 0 : pages;
        if (d.LockedVm != (long)chargeable)
        {
            return false;
        }
        (uint avail, int count, int invalid) = iommu.TreeForCheck.CountersUnlockedForCheck;
        Counters counters = ct.ViewCounters with { DmaAvail = avail, DmaCount = count, VaddrInvalidCount = invalid };
        // Host memory's count of pins outstanding as the MAP left it (its lock not taken since).
        ulong hostPins = memory.TotalPinsUnlockedForCheck;
        // Still nobody: what was read above is one state (a writer that came meanwhile took one of the locks). The reads
        // above must complete before the counts are read again: a read barrier, as a seqlock's reader (smp_rmb), not a
        // full fence (an mfence on x64 on every check after a one-page MAP; Volatile.ReadBarrier is free there, loads
        // being ordered, and keeps the compiler from moving the reads).
        Volatile.ReadBarrier();
        if (iommu.CheckLock.EntriesForCheck != entries || memory.LockEntriesForCheck != e.Memory || (first is not null && first.LockEntriesForCheck != e.Domains))
        {
            return false;
        }
        result = ConcludeOne(totals, ct, d, chargeable, in counters, hostPins);
        if (result is null)
        {
            return false;
        }
        // The counts as this check leaves them: it took no lock.
        ct.CheckedEntries = e;
        totals.CheckedMemory = e.Memory;
        TrustedHandOverChecks++;
        return true;
    }

    // Conclude for the one mapping a MAP linked, without the window's sums (a struct of references the frame would zero
    // on every call): the same moves of the totals and the same checks.
    private IReadOnlyList<InvariantViolation>? ConcludeOne(Totals totals, ContainerTotals ct, VfioDma d, ulong pins, in Counters counters, ulong hostPins)
    {
        int mappings = ct.Mappings + 1;
        int invalid = ct.VaddrInvalid + (d.VaddrInvalid ? 1 : 0);
        if (!counters.Agree(mappings, invalid))
        {
            return null;
        }
        if (totals.FindCharge(d.Mm) is not MmCharge charge)
        {
            return Sweep();
        }
        // The totals stay in _totals while they move: nothing from here to ConcludeTotals throws or returns early (plain
        // arithmetic on the totals, comparisons, a report), and ConcludeTotals lets go of them when it finds anything.
        ct.Mappings = mappings;
        ct.VaddrInvalid = invalid;
        totals.Type1Pins += pins;
        charge.Charged += d.LockedVm;
        charge.Mappings++;
        return ConcludeTotals(totals, hostPins);
    }
}
