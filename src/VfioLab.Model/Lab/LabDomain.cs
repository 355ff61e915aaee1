using System.Numerics;
using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Lab;

/// <summary>
/// A snapshot of one paging IOMMU domain (<c>struct iommu_domain</c>) and its I/O page table: how many leaf IOPTEs
/// it holds, split by page size, and the page-table memory they need. What a VMM author sizing a guest asks: how
/// many 4 KiB, 2 MiB and 1 GiB entries does this guest's memory become, and how many table pages back them.
/// </summary>
/// <param name="Name">The domain's name, unique in its host for the host's lifetime (<c>vt-d#0/d1</c>: the IOMMU
/// unit, then the domain's number there).</param>
/// <param name="PageSizes">The IOPTE sizes the domain supports (<c>pgsize_bitmap</c>), one bit per size.</param>
/// <param name="Entries">Leaf IOPTEs now, of every size.</param>
/// <param name="EntriesByPageSize">Leaf IOPTEs by page size, smallest size first; sizes with no entry left out.</param>
/// <param name="PageTablePages">Table pages (each <see cref="MinPageSize"/> bytes) the leaf entries need, estimated for
/// a radix table of 8-byte entries deep enough for a 48-bit IOVA: a leaf sits in the level whose entry span it
/// matches, and every level above it has the tables covering its IOVA; at least the root.</param>
/// <param name="Groups">The IOMMU groups attached to the domain, by number.</param>
/// <param name="Runs">The page table itself, as runs of same-size leaf IOPTEs in IOVA order. Where type1 keeps several
/// domains for one container, each maps exactly the container's mappings.</param>
public sealed record LabDomain(string Name, ulong PageSizes, ulong Entries, IReadOnlyList<KeyValuePair<ulong, ulong>> EntriesByPageSize,
    ulong PageTablePages, IReadOnlyList<int> Groups, IReadOnlyList<LabIommuRun> Runs)
{
    /// <summary>The smallest IOPTE size (the alignment of every map and unmap), also the size of one table page.</summary>
    public ulong MinPageSize => PageSizes == 0 ? 0 : 1UL << BitOperations.TrailingZeroCount(PageSizes);

    /// <summary><see cref="PageTablePages"/> in bytes.</summary>
    public ulong PageTableBytes => PageTablePages * MinPageSize;

    /// <summary><c>iommu_iova_to_phys</c>: the physical address <paramref name="iova"/> translates to, whatever the
    /// entry's permissions.</summary>
    /// <returns>The physical address, or null where no IOPTE maps <paramref name="iova"/> (the kernel returns 0 there).</returns>
    public ulong? IovaToPhys(ulong iova)
    {
        int lo = 0;
        int hi = Runs.Count - 1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) / 2);
            LabIommuRun run = Runs[mid];
            if (iova < run.Iova)
            {
                hi = mid - 1;
            }
            else if (iova > run.Last)
            {
                lo = mid + 1;
            }
            else
            {
                return run.Physical + (iova - run.Iova);
            }
        }
        return null;
    }

    /// <summary>
    /// The table pages (each <paramref name="granule"/> bytes) a domain whose leaf entries are <paramref name="runs"/>
    /// needs, by the estimate <see cref="PageTablePages"/> reports: a radix table of 8-byte entries as deep as a
    /// 48-bit IOVA needs, a leaf in the table whose entries span its size and one table on every level above. For a
    /// plan that asks what a layout would cost before any domain holds it.
    /// </summary>
    /// <param name="runs">Leaf entries as runs, sorted by IOVA and disjoint (<see cref="LabIommuRun.Physical"/> and
    /// the permissions do not matter).</param>
    /// <param name="granule">The table granule: the smallest IOMMU page size, a power of two of at least 4 KiB.</param>
    public static ulong TablePagesFor(IReadOnlyList<LabIommuRun> runs, ulong granule)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (granule < 4096 || !System.Numerics.BitOperations.IsPow2(granule))
        {
            throw new ArgumentOutOfRangeException(nameof(granule), granule, "a power of two of at least 4 KiB");
        }
        return TablePages([.. runs.Select(r => new MappedRun(new ByteRange(r.Iova, r.Last), new PhysAddr(r.Physical), r.PageSize, 0))], granule);
    }

    private static ulong TablePages(IReadOnlyList<MappedRun> runs, ulong granule)
    {
        ulong tables = 0;
        foreach (ulong t in PageTableFootprint.TablesPerLevel(runs, granule))
        {
            tables += t;
        }
        return tables;
    }

    internal static LabDomain Of(IommuDomain domain)
    {
        IReadOnlyList<MappedRun> runs = domain.MappedRuns();
        ulong tables = TablePages(runs, domain.MinPageSize);
        return new LabDomain(domain.Name, domain.PgsizeBitmap, domain.TotalEntries, domain.EntryCounts(), tables,
            [.. domain.AttachedGroups.Select(g => g.Id)],
            [.. runs.Select(r => new LabIommuRun(r.Iova.Start, r.Iova.Last, r.Phys.Value, r.PageSize,
                (r.Prot & IommuProt.Read) != 0, (r.Prot & IommuProt.Write) != 0))]);
    }
}
