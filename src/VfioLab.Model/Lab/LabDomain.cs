using System.Numerics;
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
public sealed record LabDomain(string Name, ulong PageSizes, ulong Entries, IReadOnlyList<KeyValuePair<ulong, ulong>> EntriesByPageSize,
    ulong PageTablePages, IReadOnlyList<int> Groups)
{
    /// <summary>The smallest IOPTE size (the alignment of every map and unmap), also the size of one table page.</summary>
    public ulong MinPageSize => PageSizes == 0 ? 0 : 1UL << BitOperations.TrailingZeroCount(PageSizes);

    /// <summary><see cref="PageTablePages"/> in bytes.</summary>
    public ulong PageTableBytes => PageTablePages * MinPageSize;

    internal static LabDomain Of(IommuDomain domain)
    {
        ulong tables = 0;
        foreach (ulong t in PageTableFootprint.TablesPerLevel(domain.MappedRuns(), domain.MinPageSize))
        {
            tables += t;
        }
        return new LabDomain(domain.Name, domain.PgsizeBitmap, domain.TotalEntries, domain.EntryCounts(), tables,
            [.. domain.AttachedGroups.Select(g => g.Id)]);
    }
}
