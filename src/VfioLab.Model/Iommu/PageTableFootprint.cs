
namespace VfioLab.Iommu;

/// <summary>
/// An estimate of the memory an IOMMU domain's page table occupies for a set of leaf entries: a radix table whose
/// table pages are one granule each (4 KiB for VT-d, AMD-Vi and SMMUv3's 4 KiB granule; 64 KiB for the 64 KiB
/// granule) holding 8-byte entries, with as many levels as a 48-bit IOVA needs. A leaf whose page size is one
/// level's entry span sits in that level's table (a size between two spans, replicated, in the lower); every level
/// above it needs the tables covering its IOVA. The model keeps entries as runs, so this is computed from runs,
/// never per entry. What <c>LabDomain.PageTablePages</c> reports.
/// </summary>
internal static class PageTableFootprint
{
    /// <summary>The IOVA width the levels are counted for (x86 4-level, ARM LPAE 48-bit).</summary>
    public const int IovaBits = 48;

    /// <summary>Table pages per level (index 0: the tables holding granule-size entries; last: the root), for
    /// <paramref name="runs"/> sorted by IOVA and disjoint.</summary>
    /// <param name="runs">The domain's leaf entries, as runs.</param>
    /// <param name="granule">The table granule (the smallest page size, a power of two of at least 4 KiB).</param>
    public static ulong[] TablesPerLevel(IReadOnlyList<MappedRun> runs, ulong granule)
    {
        int granuleShift = System.Numerics.BitOperations.Log2(granule);
        int bitsPerLevel = granuleShift - 3; // 8-byte entries: granule / 8 per table
        int levels = (IovaBits - granuleShift + bitsPerLevel - 1) / bitsPerLevel;
        var tables = new ulong[levels];
        for (int level = 0; level < levels; level++)
        {
            // A table at this level covers 2^coverShift bytes and holds entries of 2^(coverShift - bitsPerLevel).
            int coverShift = granuleShift + ((level + 1) * bitsPerLevel);
            ulong entrySpan = 1UL << (coverShift - bitsPerLevel);
            bool isRoot = level == levels - 1;
            ulong count = 0;
            ulong lastBlock = ulong.MaxValue;
            foreach (MappedRun run in runs)
            {
                if (!isRoot && run.PageSize >= entrySpan << bitsPerLevel)
                {
                    continue; // a leaf as big as a higher level's entry sits in a table further up
                }
                ulong first = coverShift >= 64 ? 0 : run.Iova.Start >> coverShift;
                ulong last = coverShift >= 64 ? 0 : run.Iova.Last >> coverShift;
                count += last - first + 1;
                if (first == lastBlock)
                {
                    count--;
                }
                lastBlock = last;
            }
            tables[level] = isRoot ? Math.Max(count, 1) : count;
        }
        return tables;
    }

    /// <summary>Bytes of all the tables <see cref="TablesPerLevel"/> counts (each one granule).</summary>
    public static ulong Bytes(IReadOnlyList<MappedRun> runs, ulong granule)
    {
        ulong total = 0;
        foreach (ulong t in TablesPerLevel(runs, granule))
        {
            total += t;
        }
        return total * granule;
    }
}
