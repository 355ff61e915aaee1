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
// MAP left is what there is. The check then holds the MAP to what it handed over, exactly as the in-place pass would:
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
    private bool TryCheckByHandOver(Totals totals, ContainerTotals ct, ByteRange changed, [NotNullWhen(true)] out IReadOnlyList<InvariantViolation>? result)
    {
        result = null;
        VfioIommu iommu = ct.Iommu;
        PhysicalMemory memory = host.Machine.Memory;
        int entries = iommu.CheckLock.EntriesForCheck;
        WindowSums now = default;
        Counters counters = default;
        ulong hostPins;
        HandOverEntries e;
        using (iommu.CheckLock.EnterScope())
        {
            // Nobody took the container's lock between the last check and the MAP (the MAP's enter is the one more), nor
            // between the MAP's hand-over and this check (this enter is the one more); nor the page tables' or host
            // memory's locks between the last check and the MAP's start, or after the MAP's hand-over.
            e = iommu.HandOverForCheckLocked;
            HandOverEntries start = iommu.StartForCheckLocked;
            HandOverEntries last = ct.CheckedEntries;
            if (iommu.CheckLock.EntriesForCheck != unchecked(entries + 1) || e.Container != entries
                || !ct.EntriesKnown || start.Container != unchecked(last.Container + 1) || start.Domains != last.Domains || start.Memory != totals.CheckedMemory
                || iommu.LinkedForCheckLocked is not { } d
                || d.Range.Start != changed.Start || d.Range.Last != changed.Last || iommu.DevicesTakePartForCheckLocked)
            {
                return false;
            }
            IReadOnlyList<VfioDomain> domains = iommu.DomainsForCheck.DomainsLocked;
            ulong pages = d.Size >> host.Machine.PageShift;
            if (domains.Count > 1 || (domains.Count == 1 && (pages != 1 || domains[0].Domain.LockEntriesForCheck != e.Domains
                || domains[0].Domain.HasPendingInvalidationsUnlockedForCheck))
                || memory.LockEntriesForCheck != e.Memory || !d.Mm.IsAlive)
            {
                return false;
            }
            // The view and counters of the in-place pass (its gaps are not read: nothing but the MAP wrote the page table).
            if (!TryViewLocked(iommu, d.Range, ref counters, out ContainerView view)
                || !MappingSound(in view, d, new Run<DmaRef>(d.Range.Start, d.Last, new DmaRef(d))))
            {
                return false;
            }
            ulong chargeable = view.First is null ? 0 : pages;
            if (d.LockedVm != (long)chargeable)
            {
                return false;
            }
            now.Add(d.Mm, d.LockedVm, d.VaddrInvalid, chargeable);
            // Host memory's lock was not taken since the hand-over: its count of pins outstanding is as the MAP left it.
            hostPins = memory.TotalPinsUnlockedForCheck;
            if (memory.LockEntriesForCheck != e.Memory)
            {
                return false;
            }
        }
        result = Conclude(totals, ct, ref now, in counters, hostPins);
        if (result is null)
        {
            return false;
        }
        // The counts as this check leaves them: its own enter of the container's lock, nothing else.
        ct.CheckedEntries = new HandOverEntries(unchecked(entries + 1), e.Domains, e.Memory);
        totals.CheckedMemory = e.Memory;
        TrustedHandOverChecks++;
        return true;
    }
}
