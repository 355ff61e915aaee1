using System.Numerics;

namespace VfioLab.Scenarios.Planning;

/// <summary>
/// The arithmetic of an IOMMU domain's page table, as rules over runs (never per page): how <c>iommu_map</c> splits a
/// physically contiguous range into IOPTEs (the largest supported size that the remaining length and the alignment
/// of the IOVA, hence of the physical address, allow), and how many granule-sized table pages of 8-byte entries
/// hold them (as deep as a 48-bit IOVA needs; a leaf sits in the table whose entries span its size, and needs one
/// table on every level above). The split is stated here, so a plan can be checked against a run; the
/// table count is the model's own (<c>LabDomain.TablePagesFor</c>).
/// </summary>
internal static class IopteMath
{
    /// <summary>The IOPTE runs of one mapping: (first IOVA, last IOVA, page size). <paramref name="contiguity"/>
    /// bounds the page size: the host memory behind it is physically contiguous in naturally aligned units of that
    /// size (a larger IOPTE would need more).</summary>
    public static void Split(ulong iova, ulong phys, ulong size, ulong contiguity, ulong pageSizes, List<(ulong Start, ulong Last, ulong PageSize)> runs)
    {
        ulong pos = iova;
        ulong end = iova + size;
        while (pos < end)
        {
            ulong remaining = end - pos;
            ulong page = 0;
            ulong next = 0; // the next larger usable size, whose boundary ends this run
            for (ulong bits = pageSizes; bits != 0; bits &= bits - 1)
            {
                ulong p = 1UL << BitOperations.TrailingZeroCount(bits);
                if (p > contiguity)
                {
                    break;
                }
                if (p <= remaining && pos % p == 0 && (phys + (pos - iova)) % p == 0)
                {
                    page = p;
                }
                else if (page != 0 && next == 0 && p > page)
                {
                    next = p;
                }
            }
            if (page == 0)
            {
                throw new InvalidOperationException($"0x{pos:x} is not aligned to any IOMMU page size in 0x{pageSizes:x}");
            }
            ulong stop = next == 0 ? end : Math.Min(end, GuestLayout.AlignUp(pos + 1, next));
            ulong count = (stop - pos) / page;
            if (count == 0)
            {
                count = 1;
            }
            runs.Add((pos, pos + (count * page) - 1, page));
            pos += count * page;
        }
    }

    /// <summary>Table pages for <paramref name="runs"/> (sorted by IOVA, disjoint) with tables of <paramref name="granule"/>
    /// bytes: the model's own estimate (<see cref="Lab.LabDomain.TablePagesFor"/>), so a plan and a run count alike.</summary>
    public static ulong TablePages(IReadOnlyList<(ulong Start, ulong Last, ulong PageSize)> runs, ulong granule) =>
        Lab.LabDomain.TablePagesFor([.. runs.Select(r => new Lab.LabIommuRun(r.Start, r.Last, 0, r.PageSize, true, true))], granule);
}
