using System.Numerics;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The type1 invariants about what is attached (spec type1.md §4.10-§4.12, §2.6, §2.8): valid IOVA
// windows, the page sizes offered, and which group sits where.
internal sealed partial class InvariantChecker
{
    // §4.10: windows sorted and disjoint, none covering a non-relaxable reserved region of an attached
    // IOMMU group; every mapping inside one window (or the list is empty).
    private static void CheckIovaWindows(Type1State t, bool groups, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        IReadOnlyList<ByteRange> w = s.IovaRanges;
        for (int i = 0; i < w.Count; i++)
        {
            if (w[i].Start > w[i].Last || (i > 0 && w[i - 1].Last >= w[i].Start))
            {
                t.Report(found, InvariantName.MappingInIovaRange, $"IOVA windows not sorted and disjoint: {string.Join(", ", w)}");
                break;
            }
        }
        foreach (VfioDomainSnapshot d in groups ? s.Domains : [])
        {
            foreach (Type1GroupSnapshot g in d.Groups)
            {
                foreach (ReservedRegion r in g.IommuGroup?.ReservedRegions ?? [])
                {
                    if (r.IsHoleForVfio && w.Any(x => x.Overlaps(r.Range)))
                    {
                        t.Report(found, InvariantName.MappingInIovaRange, $"an IOVA window covers reserved region {r} of {g}");
                    }
                }
            }
        }
        if (w.Count == 0)
        {
            return;
        }
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            // The last window starting at or before the mapping (windows are sorted, checked above).
            int lo = 0;
            int hi = w.Count - 1;
            int at = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (w[mid].Start <= m.Iova)
                {
                    at = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            if (at < 0 || !w[at].Contains(m.Range))
            {
                t.Report(found, InvariantName.MappingInIovaRange, $"{m} is not inside one IOVA window of {string.Join(", ", w)}");
            }
        }
    }

    // §4.11, §2.6: the AND of the domains' sizes with sub-PAGE_SIZE bits folded into PAGE_SIZE, or PAGE_MASK
    // with no domain; never a minimum below PAGE_SIZE.
    private static void CheckPgsizeBitmap(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        ulong expected = ~(s.PageSize - 1);
        if (s.Domains.Count > 0)
        {
            ulong and = ulong.MaxValue;
            foreach (VfioDomainSnapshot d in s.Domains)
            {
                and &= d.Domain.PgsizeBitmap;
            }
            expected = PageSizeBitmap.FoldSubPageSizes(and, s.PageSize);
        }
        if (s.PgsizeBitmap != expected || s.PgsizeBitmap == 0 || BitOperations.TrailingZeroCount(s.PgsizeBitmap) < BitOperations.TrailingZeroCount(s.PageSize))
        {
            ulong min = PageSizeBitmap.MinPageSize(s.PgsizeBitmap);
            string below = min != 0 && min < s.PageSize ? $" (offers 0x{min:x}, below PAGE_SIZE 0x{s.PageSize:x})" : string.Empty;
            t.Report(found, InvariantName.PgsizeBitmap, $"pgsize_bitmap {PageSizeBitmap.Format(s.PgsizeBitmap)}{below}, expected {PageSizeBitmap.Format(expected)}");
        }
    }

    // §4.12: the backend holds exactly the container's groups, each once (in one domain, whose IOMMU group
    // translates through it, or in the emulated list); every domain has a group; two domains of one IOMMU
    // unit never share ops and coherency, since the attach would have reused the older one. (Across units
    // a second domain is legitimate whenever the older domain did not suit the attaching group's unit.)
    private static void CheckType1Groups(Type1State t, List<InvariantViolation> found)
    {
        VfioIommuSnapshot s = t.Snapshot;
        var where = new Dictionary<VfioGroup, string>();
        void Place(Type1GroupSnapshot g, string place)
        {
            if (where.TryGetValue(g.Group, out string? other))
            {
                t.Report(found, InvariantName.GroupAttachedOnce, $"{g} is attached in {other} and in {place}");
            }
            where[g.Group] = place;
        }
        for (int i = 0; i < s.Domains.Count; i++)
        {
            VfioDomainSnapshot d = s.Domains[i];
            if (d.Groups.Count == 0)
            {
                t.Report(found, InvariantName.GroupAttachedOnce, $"domain {d} has no group");
            }
            foreach (Type1GroupSnapshot g in d.Groups)
            {
                Place(g, $"domain {d}");
                if (g.IommuGroup is null || !ReferenceEquals(g.IommuGroup.Domain, d.Domain))
                {
                    t.Report(found, InvariantName.GroupAttachedOnce, $"{g} is listed in domain {d} but its IOMMU group translates through {g.IommuGroup?.Domain?.Name ?? "none"}");
                }
            }
            for (int j = i + 1; j < s.Domains.Count; j++)
            {
                VfioDomainSnapshot older = s.Domains[j];
                if (ReferenceEquals(older.Domain.Unit, d.Domain.Unit) && older.Domain.OpsName == d.Domain.OpsName &&
                    older.EnforceCacheCoherency == d.EnforceCacheCoherency)
                {
                    t.Report(found, InvariantName.GroupAttachedOnce, $"domains {d} and {older} of one IOMMU share ops and coherency: the older was not reused");
                }
            }
        }
        foreach (Type1GroupSnapshot g in s.EmulatedGroups)
        {
            Place(g, "the emulated list");
        }
        IReadOnlyList<VfioGroup> listed = t.Container.Groups;
        foreach (VfioGroup g in listed)
        {
            if (!where.ContainsKey(g))
            {
                t.Report(found, InvariantName.GroupAttachedOnce, $"group {g.Number} is in the container but not attached to its type1 backend");
            }
        }
        foreach (VfioGroup g in where.Keys)
        {
            if (!listed.Contains(g))
            {
                t.Report(found, InvariantName.GroupAttachedOnce, $"group {g.Number} is attached to the type1 backend but not listed by the container");
            }
        }
    }
}
