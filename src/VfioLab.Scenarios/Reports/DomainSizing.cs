namespace VfioLab.Scenarios.Reports;

/// <summary>One IOMMU domain's page table over a run: the peak of leaf entries (with their split by page size at
/// that peak) and the peak of table memory (<see cref="Lab.LabDomain.PageTablePages"/>).</summary>
internal sealed record DomainSizing(string Name, ulong Granule, ulong PeakEntries, IReadOnlyList<KeyValuePair<ulong, ulong>> EntriesAtPeak, ulong PeakTablePages)
{
    /// <summary>Bytes of the peak's tables.</summary>
    public ulong PeakTableBytes => PeakTablePages * Granule;
}
