using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The structural invariants of each type1 container (spec type1.md §4.1-§4.3, §4.7-§4.9, §4.13): the
// DMA tree, the slot budget, the domains' agreement, counters, bitmaps and IOTLB flushes. IOVA windows,
// page sizes and groups are in InvariantChecker.Type1Domains.cs, page-level invariants in
// InvariantChecker.Accounting.cs.
internal sealed partial class InvariantChecker
{
    private List<Type1State> CheckType1Containers(List<InvariantViolation> found)
    {
        var states = new List<Type1State>();
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            if (c.Iommu is not VfioIommu iommu)
            {
                continue;
            }
            // The mappings and page tables in place first: when that finds nothing, a snapshot of the rest (groups,
            // windows, counters) is all the other checks need; otherwise the whole snapshot says what is wrong.
            Type1State? t = SweepInPlace(c, iommu);
            if (t is null)
            {
                t = new Type1State(c, iommu.Snapshot());
                t.MappingCount = t.Snapshot.Mappings.Count;
                t.VaddrInvalid = CountVaddrInvalid(t.Snapshot.Mappings);
            }
            states.Add(t);
            CheckType1Container(t, whole: true, found);
            CheckDmaAvail(t, t.MappingCount, found);
            CheckCounters(t, t.VaddrInvalid, found);
        }
        return states;
    }

    // Every type1 check of one container but the two that count all its mappings (dma-avail-conserved,
    // vaddr-invalid-count), which the incremental check answers from what it keeps. Not whole (after a MAP or
    // UNMAP): without what those calls never change (groups and their reserved regions, pgsize_bitmap).
    private void CheckType1Container(Type1State t, bool whole, List<InvariantViolation> found)
    {
        CheckMappingsDisjoint(t, found);
        CheckDomainsAgree(t, found);
        CheckTranslationsBacked(t, found);
        CheckMappingPages(t, found);
        CheckDirtyBitmaps(t, found);
        CheckIovaWindows(t, whole, found);
        if (whole)
        {
            CheckPgsizeBitmap(t, found);
            CheckType1Groups(t, found);
        }
        CheckFlushed(t, found);
        CheckNotifierRetries(t, found);
    }

    private static int CountVaddrInvalid(IReadOnlyList<VfioDmaSnapshot> mappings)
    {
        int invalid = 0;
        foreach (VfioDmaSnapshot m in mappings)
        {
            invalid += m.VaddrInvalid ? 1 : 0;
        }
        return invalid;
    }

    // §4.1: one tree range per mapping, exactly its extent; size > 0 and fully mapped; extents disjoint;
    // IOVA and size aligned to every domain's minimum IOPTE (what the IOMMU accepted), vaddr to PAGE_SIZE.
    // Not to the AND of the domains' sizes: it can exceed every domain's minimum ({4K,2M} & {64K,2M} =
    // {2M}) after mappings were made, and type1 does not refuse such an attach.
    private static void CheckMappingsDisjoint(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        ulong align = s.PageSize;
        foreach (VfioDomainSnapshot d in s.Domains)
        {
            align = Math.Max(align, d.Domain.MinPageSize);
        }
        VfioDmaSnapshot? prev = null;
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            if (m.RequestedSize == 0 || m.Size != m.RequestedSize)
            {
                t.Report(found, InvariantName.MappingsDisjoint, $"{m}: size 0x{m.RequestedSize:x}, 0x{m.Size:x} mapped");
            }
            else if (((m.Iova | m.RequestedSize) & (align - 1)) != 0 || (m.Vaddr & (s.PageSize - 1)) != 0)
            {
                t.Report(found, InvariantName.MappingsDisjoint, $"{m}: iova, size or vaddr 0x{m.Vaddr:x} not aligned to 0x{align:x}");
            }
            if (m.TreeRuns.Count != 1 || m.TreeRuns[0] != m.Range)
            {
                t.Report(found, InvariantName.MappingsDisjoint, $"{m}: the DMA tree holds it at {string.Join(", ", m.TreeRuns)}");
            }
            if (prev is not null && prev.Last >= m.Iova)
            {
                t.Report(found, InvariantName.MappingsDisjoint, $"{m} overlaps {prev}");
            }
            prev = m;
        }
    }

    // §4.2: dma_avail + mappings == dma_entry_limit, and the backend's count is the tree's.
    private static void CheckDmaAvail(Type1State t, int mappings, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        ulong live = (ulong)mappings;
        if (s.DmaAvail + live != s.DmaEntryLimit || s.DmaCount != mappings)
        {
            t.Report(found, InvariantName.DmaAvailConserved,
                $"dma_avail 0x{s.DmaAvail:x} + 0x{live:x} mappings (counted 0x{s.DmaCount:x}) != dma_entry_limit 0x{s.DmaEntryLimit:x}");
        }
    }

    // §4.3: with domains, every mapping is iommu_mapped and wholly translated with its prot | IOMMU_CACHE,
    // every domain translates exactly as the first (runs merged where IOVA and phys continue, so
    // different page sizes compare equal), and nothing is translated outside the mappings. Without
    // domains no mapping is iommu_mapped. (The model maps no MSI cookie page, so none is exempt.)
    private static void CheckDomainsAgree(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        if (s.Domains.Count == 0)
        {
            foreach (VfioDmaSnapshot m in s.Mappings)
            {
                if (m.IommuMapped)
                {
                    t.Report(found, InvariantName.DomainsAgree, $"{m} is iommu_mapped with no domain");
                }
            }
            return;
        }
        List<Translation> first = t.Translations;
        for (int i = 1; i < s.Domains.Count; i++)
        {
            List<Translation> other = t.TranslationsOf(s.Domains[i]);
            int k = 0;
            while (k < first.Count && k < other.Count && first[k] == other[k])
            {
                k++;
            }
            if (k < first.Count || k < other.Count)
            {
                ulong at = Math.Min(k < first.Count ? first[k].Start : ulong.MaxValue, k < other.Count ? other[k].Start : ulong.MaxValue);
                string a = k < first.Count ? first[k].ToString() : "nothing";
                string b = k < other.Count ? other[k].ToString() : "nothing";
                t.Report(found, InvariantName.DomainsAgree, $"from iova 0x{at:x} on, {s.Domains[0]} translates {a} but {s.Domains[i]} translates {b}");
            }
        }
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            if (!m.IommuMapped)
            {
                t.Report(found, InvariantName.DomainsAgree, $"{m} is not iommu_mapped with 0x{s.Domains.Count:x} domain(s)");
            }
            IommuProt prot = m.Prot | IommuProt.Cache;
            ulong cursor = m.Iova;
            bool done = false;
            for (int k = FirstEndingAtOrAfter(first, m.Iova); k < first.Count && first[k].Start <= m.Last && !done; k++)
            {
                Translation x = first[k];
                if (x.Start > cursor)
                {
                    break;
                }
                if (x.Prot != prot)
                {
                    t.Report(found, InvariantName.DomainsAgree, $"{m}: {s.Domains[0]} translates {x}, not with {prot}");
                }
                done = x.Last >= m.Last;
                cursor = done ? m.Last : x.Last + 1;
            }
            if (!done)
            {
                t.Report(found, InvariantName.DomainsAgree, $"{m}: iova 0x{cursor:x} is not translated by {s.Domains[0]}");
            }
        }
        int j = 0;
        foreach (Translation x in first)
        {
            ulong cursor = x.Start;
            while (true)
            {
                while (j < s.Mappings.Count && s.Mappings[j].Last < cursor)
                {
                    j++;
                }
                if (j == s.Mappings.Count || s.Mappings[j].Iova > cursor)
                {
                    t.Report(found, InvariantName.DomainsAgree, $"{s.Domains[0]} translates iova 0x{cursor:x} ({x}) outside every mapping");
                    break;
                }
                if (s.Mappings[j].Last >= x.Last)
                {
                    break;
                }
                cursor = s.Mappings[j].Last + 1;
            }
        }
    }

    // §4.7, §4.9: vaddr_invalid_count and num_non_pinned_groups equal what they count; no emulated group
    // while a vaddr is invalid.
    private static void CheckCounters(Type1State t, int invalid, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        if (invalid != s.VaddrInvalidCount)
        {
            t.Report(found, InvariantName.VaddrInvalidCount, $"vaddr_invalid_count {s.VaddrInvalidCount}, but {invalid} mapping(s) have vaddr_invalid");
        }
        if (invalid > 0 && s.EmulatedGroups.Count > 0)
        {
            t.Report(found, InvariantName.VaddrInvalidCount, $"{invalid} invalidated vaddr(s) while {s.EmulatedGroups.Count} emulated group(s) are attached");
        }
        int nonPinned = 0;
        foreach (VfioDomainSnapshot d in s.Domains)
        {
            foreach (Type1GroupSnapshot g in d.Groups)
            {
                nonPinned += g.PinnedPageDirtyScope ? 0 : 1;
            }
        }
        if (nonPinned != s.NumNonPinnedGroups)
        {
            t.Report(found, InvariantName.NonPinnedGroupsCount, $"num_non_pinned_groups {s.NumNonPinnedGroups}, but {nonPinned} IOMMU-backed group(s) lack pinned scope");
        }
    }

    // §4.8: tracking <=> every mapping has a bitmap of at least size/pgsize bits plus a spare u64, sized for
    // the page size in force; only v2 containers track. The page size in force is never below PAGE_SIZE: a bitmap
    // advertising less (quirk subpage-iommu-pages) is pgsize-bitmap's finding, not a second one here.
    private static void CheckDirtyBitmaps(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        if (s.DirtyTracking && !s.V2)
        {
            t.Report(found, InvariantName.DirtyBitmapsPresent, "dirty tracking on a v1 container");
        }
        ulong pgsize = PageSizeBitmap.MinPageSize(s.PgsizeBitmap);
        pgsize = pgsize == 0 ? 0 : Math.Max(pgsize, s.PageSize);
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            if (!s.DirtyTracking)
            {
                if (m.BitmapWords >= 0)
                {
                    t.Report(found, InvariantName.DirtyBitmapsPresent, $"{m} keeps a bitmap while tracking is off");
                }
                continue;
            }
            ulong bits = pgsize == 0 ? 0 : m.RequestedSize / pgsize;
            ulong words = ((bits + 63) / 64) + 1;
            if (m.BitmapWords < 0 || (ulong)m.BitmapWords < words)
            {
                t.Report(found, InvariantName.DirtyBitmapsPresent,
                    $"{m}: {(m.BitmapWords < 0 ? "no bitmap" : $"a bitmap of {m.BitmapWords} word(s)")} while tracking, 0x{words:x} needed at pgsize 0x{pgsize:x}");
            }
        }
    }

    // Spec §3.8: an unmap that notified the devices 11 times for one mapping still pinned is the kernel's BUG();
    // the backend records it instead of crashing, and it stays reported until the backend is released.
    private static void CheckNotifierRetries(Type1State t, List<InvariantViolation> found)
    {
        if (t.Snapshot.NotifierBug is { } bug)
        {
            t.Report(found, InvariantName.NotifierRetryLimit, bug.ToString());
        }
    }

    // §4.13 at quiescence: every IOTLB invalidation was flushed. A range still pending may be reached by
    // a device's cached translation; the message says how much of it is already unpinned.
    private void CheckFlushed(Type1State t, List<InvariantViolation> found)
    {
        foreach (VfioDomainSnapshot d in t.Snapshot.Domains)
        {
            foreach (ByteRange r in d.PendingInvalidations)
            {
                ulong first = r.Start >> host.Machine.PageShift;
                ulong count = (r.Last >> host.Machine.PageShift) - first + 1;
                ulong unpinned = UnpinnedRamFrames(new Pfn(first), count, out _);
                t.Report(found, InvariantName.UnpinAfterFlush, $"domain {d}: phys {r} is still pending IOTLB invalidation; 0x{unpinned:x} frame(s) of it already unpinned");
            }
        }
    }
}
