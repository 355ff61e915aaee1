namespace VfioLab.Scenarios;

/// <summary>One IOMMU domain's page table over a run: the peak of leaf entries (with their split by page size at
/// that peak) and the peak of table memory (<see cref="Lab.LabDomain.PageTablePages"/>).</summary>
/// <param name="Name">The domain (<see cref="Lab.LabDomain.Name"/>).</param>
/// <param name="Granule">Its smallest page size, the size of one page-table page.</param>
/// <param name="PeakEntries">The most leaf IOPTEs it held after any step.</param>
/// <param name="EntriesAtPeak">Those entries by page size (page size, count), ascending.</param>
/// <param name="PeakTablePages">The most page-table pages its entries needed after any step.</param>
public sealed record DomainSizing(string Name, ulong Granule, ulong PeakEntries, IReadOnlyList<KeyValuePair<ulong, ulong>> EntriesAtPeak, ulong PeakTablePages)
{
    /// <summary>Bytes of the peak's tables.</summary>
    public ulong PeakTableBytes => PeakTablePages * Granule;
}
