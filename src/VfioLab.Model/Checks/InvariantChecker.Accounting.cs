using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The page-level invariants of type1 (spec type1.md §4.4-§4.6): what every translation points at, what
// each mapping and each mm is charged, external pins, and the pins every container holds. All of it run
// by run: translations are merged runs, pins and reserved frames are counted over host run maps.
internal sealed partial class InvariantChecker
{
    // §4.4: every translated frame is RAM holding a pin, or a reserved/invalid pfn (PFNMAP, a BAR). A domain
    // translating exactly as the first is not walked again.
    private void CheckTranslationsBacked(Type1State t, List<InvariantViolation> found)
    {
        int shift = host.Machine.PageShift;
        foreach (VfioDomainSnapshot d in t.Snapshot.Domains)
        {
            List<Translation> translations = t.TranslationsOf(d);
            if (!ReferenceEquals(d, t.Snapshot.Domains[0]) && translations.SequenceEqual(t.Translations))
            {
                continue;
            }
            foreach (Translation x in translations)
            {
                ulong first = x.Phys >> shift;
                ulong count = ((x.Phys + (x.Last - x.Start)) >> shift) - first + 1;
                ulong unpinned = UnpinnedRamFrames(new Pfn(first), count, out Pfn at);
                if (unpinned > 0)
                {
                    t.Report(found, InvariantName.TranslationBacked, $"domain {d}: {x} reaches 0x{unpinned:x} RAM frame(s) holding no pin, from pfn 0x{at.Value:x}");
                }
            }
        }
    }

    // §4.5 per mapping, §4.6, and what each mapping pins. With domains a mapping pins and charges each
    // non-reserved page it translates once (in the first domain: the others agree or domains-agree says
    // so); without domains it charges its non-reserved external pins. A mapping whose mm has exited is not
    // held to its count: un-charging a dead mm fails with ESRCH and leaves dma->locked_vm as it was, in
    // Linux too. No host frame is translated twice within one mapping (unless reserved: never charged).
    private void CheckMappingPages(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        PhysicalMemory mem = host.Machine.Memory;
        int shift = host.Machine.PageShift;
        bool domains = s.Domains.Count > 0;
        List<Translation> first = t.Translations;
        var frames = new List<(ulong First, ulong Last)>();
        ulong vpfns = 0;
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            ulong chargeable = 0;
            frames.Clear();
            for (int k = domains ? FirstEndingAtOrAfter(first, m.Iova) : first.Count; k < first.Count && first[k].Start <= m.Last; k++)
            {
                Translation x = first[k];
                ulong start = Math.Max(x.Start, m.Iova);
                ulong phys = x.Phys + (start - x.Start);
                ulong pf = phys >> shift;
                ulong pl = (phys + (Math.Min(x.Last, m.Last) - start)) >> shift;
                chargeable += pl - pf + 1 - mem.CountReservedOrInvalid(new Pfn(pf), pl - pf + 1);
                if (pf < mem.FrameCount)
                {
                    frames.Add((pf, Math.Min(pl, mem.FrameCount - 1)));
                }
            }
            ulong vpfnPins = 0;
            foreach (VpfnRun v in m.Vpfns)
            {
                vpfns += v.Pages;
                vpfnPins += v.Pages - mem.CountReservedOrInvalid(v.Pfn, v.Pages);
                CheckVpfn(t, m, v, found);
            }
            if (m.VpfnsNotDirty > 0)
            {
                t.Report(found, InvariantName.VpfnConsistent, $"{m}: 0x{m.VpfnsNotDirty:x} externally pinned page(s) are clean in the dirty bitmap while tracking");
            }
            t.PinsHeld += chargeable + vpfnPins;
            t.PinsPerMapping.Add(chargeable + vpfnPins);
            ulong expected = domains ? chargeable : vpfnPins;
            if (m.Mm.IsAlive && m.LockedVm != (long)expected)
            {
                t.Report(found, InvariantName.LockedVmMatchesCharges,
                    $"{m}: locked_vm 0x{m.LockedVm:x} page(s), but it {(domains ? "translates" : "externally pins")} 0x{expected:x} non-reserved page(s)");
            }
            CheckChargedOnce(t, m, frames, found);
        }
        if (vpfns > 0 && s.RegisteredDevices == 0)
        {
            t.Report(found, InvariantName.VpfnConsistent, $"0x{vpfns:x} external pin(s) with no pinning-capable device registered");
        }
    }

    // §4.6: inside its mapping, page aligned, filed under its own IOVA, ref_count >= 1, the frame the
    // domains translate that page to, and one page pin of its own on a non-reserved frame; while tracking its
    // page is dirty (§3.11: pinned pages are reported dirty until unpinned).
    private void CheckVpfn(Type1State t, VfioDmaSnapshot m, VpfnRun v, List<InvariantViolation> found)
    {
        PhysicalMemory mem = host.Machine.Memory;
        List<Translation> first = t.Translations;
        int shift = host.Machine.PageShift;
        ulong last = v.Iova + ((v.Pages - 1) << shift);
        if (v.Pages == 0 || !m.Range.Contains(v.Iova) || !m.Range.Contains(last) || (v.Iova & (t.Snapshot.PageSize - 1)) != 0)
        {
            t.Report(found, InvariantName.VpfnConsistent, $"{m}: external pins at 0x{v.Iova:x} (x{v.Pages}) lie outside the mapping or off a page boundary");
        }
        if (v.RefCount == 0)
        {
            t.Report(found, InvariantName.VpfnConsistent, $"{m}: external pin at 0x{v.Iova:x} has ref_count 0");
        }
        bool domains = t.Snapshot.Domains.Count > 0;
        string? hazard = domains && PinFollowsRemappedPage(m, v) ? RemappedUnderDma : null;
        if (domains)
        {
            // The first domain must translate the whole run to exactly its pfns, segment by segment.
            ulong at = v.Iova;
            int k = FirstEndingAtOrAfter(first, at);
            while (at <= last)
            {
                ulong expected = v.Pfn.Value + ((at - v.Iova) >> shift);
                ulong? pfn = k < first.Count && first[k].Start <= at ? (first[k].Phys + (at - first[k].Start)) >> shift : null;
                if (pfn != expected)
                {
                    t.Report(found, InvariantName.VpfnConsistent, $"{m}: external pin at 0x{at:x} holds pfn 0x{expected:x}, the domains translate to {(pfn is null ? "nothing" : $"pfn 0x{pfn:x}")}", hazard);
                    break;
                }
                ulong segLast = Math.Min(first[k].Last, last);
                if (segLast == ulong.MaxValue)
                {
                    break;
                }
                at = segLast + 1;
                k++;
            }
        }
        // A pin of a remapped page holds that page's own pin only: the domains pinned the old frame.
        ulong need = domains && hazard is null ? 2UL : 1UL;
        if (mem.CountReservedOrInvalid(v.Pfn, v.Pages) == 0 && mem.MinPinCount(v.Pfn, v.Pages) < need)
        {
            t.Report(found, InvariantName.VpfnConsistent, $"{m}: external pins at 0x{v.Iova:x} of pfns 0x{v.Pfn.Value:x} (x{v.Pages}) do not all hold a pin of their own (lowest pin count {mem.MinPinCount(v.Pfn, v.Pages)})");
        }
    }

    private const string RemappedUnderDma =
        "a hazard the user created, not a broken model: the process unmapped and remapped memory behind a DMA mapping, "
        + "so an mdev's pin walked the new page table (vaddr_get_pfn) while the IOMMU keeps the frame MAP pinned; Linux allows it";

    // Whether the owner's page table now maps the run's first and last page to the frames pinned: the pin followed
    // the process's current memory, which no longer is what MAP pinned.
    private static bool PinFollowsRemappedPage(VfioDmaSnapshot m, VpfnRun v)
    {
        if (!m.Mm.IsAlive || m.VaddrInvalid)
        {
            return false;
        }
        int shift = m.Mm.PageShift;
        ulong first = m.Vaddr + (v.Iova - m.Iova);
        m.Mm.MmapReadLock();
        try
        {
            return m.Mm.TryTranslateLocked(new HostVirtAddr(first), out Pte head) && head.Pfn == v.Pfn
                && m.Mm.TryTranslateLocked(new HostVirtAddr(first + ((v.Pages - 1) << shift)), out Pte tail) && tail.Pfn == v.Pfn.Plus(v.Pages - 1);
        }
        finally
        {
            m.Mm.MmapReadUnlock();
        }
    }

    // A host frame translated at two IOVAs of one mapping would be pinned and charged twice by it (the
    // sub-page double mapping type1 prevents by folding page sizes, spec §2.6).
    private void CheckChargedOnce(Type1State t, VfioDmaSnapshot m, List<(ulong First, ulong Last)> frames, List<InvariantViolation> found)
    {
        if (frames.Count < 2)
        {
            return;
        }
        frames.Sort((a, b) => a.First.CompareTo(b.First));
        ulong maxLast = frames[0].Last;
        for (int i = 1; i < frames.Count; i++)
        {
            (ulong f, ulong l) = frames[i];
            if (f <= maxLast)
            {
                ulong last = Math.Min(l, maxLast);
                ulong twice = last - f + 1 - host.Machine.Memory.CountReservedOrInvalid(new Pfn(f), last - f + 1);
                if (twice > 0)
                {
                    t.Report(found, InvariantName.HostPageChargedOncePerMapping, $"{m} translates 0x{twice:x} frame(s) from pfn 0x{f:x} at more than one IOVA");
                    return;
                }
            }
            maxLast = Math.Max(maxLast, l);
        }
    }

    // §4.5 per mm: every live mm's locked_vm equals what the mappings charged to it, over all containers
    // (nothing else in the model mlocks or pins-and-charges, so "includes" is "equals"); it stays within
    // the RLIMIT_MEMLOCK in force when it was last raised (AddressSpace.ChargeLimitPages; none with
    // CAP_IPC_LOCK). Linux checks the limit only when charging (vfio_lock_acct, account_locked_vm), so
    // lowering RLIMIT_MEMLOCK below a live charge is legal and not reported: the next charge fails ENOMEM.
    private Dictionary<AddressSpace, MmCharge> CheckAccounting(List<Type1State> type1, SpaprTotals spapr, List<InvariantViolation> found)
    {
        var perMm = new Dictionary<AddressSpace, MmCharge>();
        foreach (Type1State t in type1)
        {
            foreach (VfioDmaSnapshot m in t.Snapshot.Mappings)
            {
                AddCharge(perMm, m.Mm, m.LockedVm, 1);
            }
            foreach ((AddressSpace mm, MmCharge c) in t.InPlaceCharges)
            {
                AddCharge(perMm, mm, c.Charged, c.Mappings);
            }
        }
        CheckMmCharges(perMm, spapr, found);
        return perMm;
    }

    // What a mapping (or, for the incremental check, a container's mappings) charged to a live mm.
    private static void AddCharge(Dictionary<AddressSpace, MmCharge> perMm, AddressSpace mm, long charged, int mappings)
    {
        if (!mm.IsAlive)
        {
            return;
        }
        if (!perMm.TryGetValue(mm, out MmCharge? c))
        {
            c = new MmCharge();
            perMm.Add(mm, c);
        }
        c.Charged += charged;
        c.Mappings += mappings;
    }

    // The per-mm half of §4.5 and §2.9, from what the type1 mappings charged (perMm) and sPAPR's charges.
    private void CheckMmCharges(Dictionary<AddressSpace, MmCharge> perMm, SpaprTotals spapr, List<InvariantViolation> found)
    {
        foreach (Process p in host.Machine.Processes)
        {
            AddressSpace? mm = p.Mm;
            if (mm is not null && mm.IsAlive && !perMm.ContainsKey(mm))
            {
                perMm.Add(mm, new MmCharge());
            }
        }
        foreach ((AddressSpace mm, ulong pages) in spapr.Charges)
        {
            if (perMm.TryGetValue(mm, out MmCharge? c))
            {
                c.Charged += (long)pages;
                c.Mappings++;
            }
        }
        foreach ((AddressSpace mm, MmCharge c) in perMm)
        {
            ReportMmCharge(mm, c, found);
        }
    }

    // One mm's locked_vm against what was charged to it, and against the limit in force when it was charged.
    private static void ReportMmCharge(AddressSpace mm, MmCharge c, List<InvariantViolation> found)
    {
        ulong locked = mm.LockedVm;
        if (locked != unchecked((ulong)c.Charged))
        {
            found.Add(new(InvariantName.LockedVmMatchesCharges,
                $"mm of pid {mm.OwnerPid}: locked_vm 0x{locked:x} page(s), but its 0x{c.Mappings:x} mapping(s) charged 0x{c.Charged:x}"));
        }
        if (locked > mm.ChargeLimitPages)
        {
            found.Add(new(InvariantName.LockedVmWithinLimit,
                $"mm of pid {mm.OwnerPid}: locked_vm 0x{locked:x} page(s) exceeds the RLIMIT_MEMLOCK of 0x{mm.ChargeLimitPages:x} page(s) in force when it was charged"));
        }
    }

    // RAM frames of [first, first + count) that hold no pin and are not reserved, walked by pin runs;
    // pfns past RAM are invalid (MMIO) and never count.
    private ulong UnpinnedRamFrames(Pfn first, ulong count, out Pfn firstUnpinned)
    {
        PhysicalMemory mem = host.Machine.Memory;
        firstUnpinned = default;
        if (first.Value >= mem.FrameCount)
        {
            return 0;
        }
        ulong pfn = first.Value;
        ulong left = Math.Min(count, mem.FrameCount - pfn);
        ulong unpinned = 0;
        while (left > 0)
        {
            ulong n = Math.Max(mem.PinnedPrefix(new Pfn(pfn), left, out bool pinned), 1);
            if (!pinned)
            {
                ulong missing = n - mem.CountReservedOrInvalid(new Pfn(pfn), n);
                if (missing > 0 && unpinned == 0)
                {
                    firstUnpinned = new Pfn(pfn);
                }
                unpinned += missing;
            }
            pfn += n;
            left -= n;
        }
        return unpinned;
    }

    /// <summary>IOMMU runs merged where IOVA and physical address both continue with the same protection:
    /// one translation regardless of the IOPTE sizes that build it.</summary>
    private static List<Translation> Merge(IReadOnlyList<MappedRun> runs)
    {
        var merged = new List<Translation>(runs.Count);
        foreach (MappedRun r in runs)
        {
            if (merged.Count > 0)
            {
                Translation p = merged[^1];
                if (p.Last != ulong.MaxValue && p.Last + 1 == r.Iova.Start && p.Prot == r.Prot && p.Phys + (p.Last - p.Start) + 1 == r.Phys.Value)
                {
                    merged[^1] = p with { Last = r.Iova.Last };
                    continue;
                }
            }
            merged.Add(new Translation(r.Iova.Start, r.Iova.Last, r.Phys.Value, r.Prot));
        }
        return merged;
    }

    /// <summary>The index of the first translation ending at or after <paramref name="iova"/> (binary search).</summary>
    private static int FirstEndingAtOrAfter(List<Translation> list, ulong iova)
    {
        int lo = 0;
        int hi = list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (list[mid].Last < iova)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    /// <summary>One merged translation: IOVA <c>[Start, Last]</c> to physical <c>Phys</c> on.</summary>
    private readonly record struct Translation(ulong Start, ulong Last, ulong Phys, IommuProt Prot)
    {
        public override string ToString() => $"iova [0x{Start:x}, 0x{Last:x}] -> phys 0x{Phys:x} {Prot}";
    }

    /// <summary>What the mappings charged to one mm add up to.</summary>
    private sealed class MmCharge
    {
        public long Charged { get; set; }

        public int Mappings { get; set; }
    }

    /// <summary>One type1 container as checked: its snapshot, the first domain's merged translations, and the
    /// page pins it holds (summed by the page checks).</summary>
    private sealed class Type1State(VfioContainer container, VfioIommuSnapshot snapshot)
    {
        private readonly Dictionary<IommuDomain, List<Translation>> _merged = [];

        public VfioContainer Container { get; } = container;

        public VfioIommuSnapshot Snapshot { get; } = snapshot;

        /// <summary>The first domain's translations (empty with no domain).</summary>
        public List<Translation> Translations => Snapshot.Domains.Count == 0 ? [] : TranslationsOf(Snapshot.Domains[0]);

        public ulong PinsHeld { get; set; }

        /// <summary>Its mappings (the snapshot's, or those the in-place sweep counted when the snapshot has none).</summary>
        public int MappingCount { get; set; }

        /// <summary>Its mappings with <c>vaddr_invalid</c>, counted the same way.</summary>
        public int VaddrInvalid { get; set; }

        /// <summary>What its mappings charged per live mm, when the sweep read them in place (the snapshot has none).</summary>
        public KeyValuePair<AddressSpace, MmCharge>[] InPlaceCharges { get; init; } = [];

        /// <summary>Per mapping, in the snapshot's order, the page pins it holds (summed by the page checks).</summary>
        public List<ulong> PinsPerMapping { get; } = [];

        public List<Translation> TranslationsOf(VfioDomainSnapshot d)
        {
            if (!_merged.TryGetValue(d.Domain, out List<Translation>? list))
            {
                list = Merge(d.Runs);
                _merged.Add(d.Domain, list);
            }
            return list;
        }

        public void Report(List<InvariantViolation> found, string invariant, string message, string? hazard = null) =>
            found.Add(new(invariant, $"container {Container.Id}: {message}") { Hazard = hazard });
    }
}
