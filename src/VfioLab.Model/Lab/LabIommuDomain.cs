using VfioLab.Iommu;

namespace VfioLab.Lab;

/// <summary>
/// An IOMMU domain (<c>struct iommu_domain</c>) as a device's DMA meets it: its page sizes and its page table as
/// runs of leaf IOPTEs in IOVA order, copied when it was read (<see cref="LabDevice.Domain"/>). Where type1 keeps
/// several domains for one container, each should map exactly the container's mappings.
/// </summary>
/// <param name="Name">The domain's name: its IOMMU unit and number (<c>vt-d#0/d1</c>).</param>
/// <param name="PageSizes">The IOPTE sizes the domain supports (<c>pgsize_bitmap</c>), one bit per size.</param>
/// <param name="Runs">The page table's runs, in IOVA order.</param>
public sealed record LabIommuDomain(string Name, ulong PageSizes, IReadOnlyList<LabIommuRun> Runs)
{
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

    internal static LabIommuDomain Of(IommuDomain domain) => new(domain.Name, domain.PgsizeBitmap,
        [.. domain.MappedRuns().Select(r => new LabIommuRun(r.Iova.Start, r.Iova.Last, r.Phys.Value, r.PageSize,
            (r.Prot & IommuProt.Read) != 0, (r.Prot & IommuProt.Write) != 0))]);
}
