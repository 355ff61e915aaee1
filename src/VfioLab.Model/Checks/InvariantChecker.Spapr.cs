using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Spapr;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The sPAPR TCE invariants (docs/spapr.md): every container serves one mm (container-single-mm); every v2 TCE
// points where its recorded userspace address does in a pre-registered region (tce-userspace-consistent); no
// region is released while TCEs point into it, and each region's mapping count is the TCEs pointing into it
// (prereg-not-released-while-mapped). Also what sPAPR holds for the host-wide checks: pins and locked_vm
// charges. Walked by TCE runs split at region and hpa-run boundaries, never by TCE.
internal sealed partial class InvariantChecker
{
    private SpaprTotals CheckSpapr(List<InvariantViolation> found)
    {
        var totals = new SpaprTotals();
        VfioIommuSpaprTceDriver? driver = host.SpaprDriver;
        if (driver is null)
        {
            return totals;
        }
        SpaprMmRegistry mms = driver.Mms;
        int shift = host.Machine.PageShift;
        var pointing = new Dictionary<MmIommuRegion, ulong>(ReferenceEqualityComparer.Instance);
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            if (c.Iommu is not TceContainer tce)
            {
                continue;
            }
            totals.Containers++;
            TceContainerSnapshot s = tce.Snapshot();
            AddressSpace? owner = s.Mm ?? s.FirstUser;
            int? ownerId = owner is null ? null : mms.IdOf(owner);
            if (s.LockedPages > 0 && s.LockedMm is not null)
            {
                totals.Charge(s.LockedMm, s.LockedPages);
                CheckSameMm(c, owner, s.LockedMm, "ENABLE's charge", found);
            }
            foreach (TceWindowSnapshot w in s.Windows)
            {
                if (w.ChargedMm is not null)
                {
                    totals.Charge(w.ChargedMm, w.Table.ChargedPages);
                    CheckSameMm(c, owner, w.ChargedMm, $"the charge of window #{w.Table.Number}", found);
                }
                foreach (Run<TceEntryRun> r in w.Runs)
                {
                    ulong entries = r.Last - r.Start + 1;
                    if (!s.V2)
                    {
                        totals.PinsHeld += entries;
                    }
                    if (ownerId is not null && r.Value.MmId != ownerId)
                    {
                        found.Add(new(InvariantName.ContainerSingleMm,
                            $"container {c.Id}: TCEs [0x{r.Start:x}, 0x{r.Last:x}] of window #{w.Table.Number} hold pages of mm #{r.Value.MmId} (ua 0x{r.Value.Ua:x}), but the container serves mm of pid {owner!.OwnerPid} (#{ownerId})"));
                    }
                    if (s.V2)
                    {
                        CheckUserspaceView(c, w.Table, r, mms, pointing, shift, found);
                    }
                }
            }
            foreach (MmIommuRegion region in s.Prereg)
            {
                CheckSameMm(c, owner, region.Mm, region.ToString(), found);
            }
        }
        foreach (MmIommuContext ctx in mms.Contexts)
        {
            foreach (MmIommuRegion region in ctx.Regions)
            {
                totals.PinsHeld += region.Entries;
                totals.Charge(region.Mm, region.Entries);
                ulong tces = pointing.GetValueOrDefault(region);
                if (region.Mapped != tces + 1)
                {
                    found.Add(new(InvariantName.PreregNotReleasedWhileMapped,
                        $"{region}: mapped count says 0x{(region.Mapped == 0 ? 0 : region.Mapped - 1):x} TCE(s), 0x{tces:x} point into it"));
                }
            }
        }
        foreach ((AddressSpace mm, ulong pages) in mms.Leaks)
        {
            totals.Charge(mm, pages);
        }
        return totals;
    }

    private static void CheckSameMm(VfioContainer c, AddressSpace? owner, AddressSpace other, string what, List<InvariantViolation> found)
    {
        if (owner is not null && !ReferenceEquals(owner, other))
        {
            found.Add(new(InvariantName.ContainerSingleMm, $"container {c.Id}: {what} belongs to the mm of pid {other.OwnerPid}, the container serves the mm of pid {owner.OwnerPid}"));
        }
    }

    // One TCE run of a v2 window: split where the region or its hpa run changes; each piece must lie in a live
    // region of the entry's mm and translate to the region's frame for its userspace address.
    private static void CheckUserspaceView(VfioContainer c, TceTable table, Run<TceEntryRun> run, SpaprMmRegistry mms,
        Dictionary<MmIommuRegion, ulong> pointing, int shift, List<InvariantViolation> found)
    {
        TceEntryRun v = run.Value;
        MmIommuContext? ctx = mms.ById(v.MmId);
        ulong tceSize = 1UL << v.PageShift;
        ulong count = run.Last - run.Start + 1;
        ulong k = 0;
        bool reported = false;
        while (k < count)
        {
            ulong ua = v.Ua + (k << v.PageShift);
            ulong hpa = v.Hpa + (k << v.PageShift);
            MmIommuRegion? region = ctx?.Lookup(ua, tceSize, shift);
            if (region is null || region.Released)
            {
                found.Add(new(region is null ? InvariantName.TceUserspaceConsistent : InvariantName.PreregNotReleasedWhileMapped,
                    $"container {c.Id}: TCE 0x{run.Start + k:x} of window #{table.Number} records ua 0x{ua:x}, which no {(region is null ? string.Empty : "live ")}pre-registered region of mm #{v.MmId} holds"));
                return;
            }
            ulong pageIndex = (ua - region.Ua) >> shift;
            if (!region.TryGetHpas(pageIndex, out Run<HpaRun> hpas))
            {
                found.Add(new(InvariantName.TceUserspaceConsistent, $"container {c.Id}: {region} has no frame for ua 0x{ua:x}"));
                return;
            }
            ulong expected = (hpas.ValueAt(pageIndex).Pfn << shift) | (ua & ((1UL << shift) - 1));
            ulong runEndUa = region.Ua + ((hpas.Last + 1) << shift);
            ulong n = Math.Min(count - k, (runEndUa - ua + tceSize - 1) >> v.PageShift);
            n = Math.Max(1, Math.Min(n, (region.Ua + region.Size(shift) - ua) >> v.PageShift));
            if (expected != hpa && !reported)
            {
                found.Add(new(InvariantName.TceUserspaceConsistent,
                    $"container {c.Id}: TCE 0x{run.Start + k:x} of window #{table.Number} points at 0x{hpa:x}, its ua 0x{ua:x} is registered at 0x{expected:x}"));
                reported = true;
            }
            pointing[region] = pointing.GetValueOrDefault(region) + n;
            k += n;
        }
    }

    /// <summary>What the sPAPR backend holds for the host-wide checks.</summary>
    private sealed class SpaprTotals
    {
        public int Containers { get; set; }

        public ulong PinsHeld { get; set; }

        public Dictionary<AddressSpace, ulong> Charges { get; } = new(ReferenceEqualityComparer.Instance);

        public void Charge(AddressSpace mm, ulong pages) => Charges[mm] = Charges.GetValueOrDefault(mm) + pages;
    }
}
