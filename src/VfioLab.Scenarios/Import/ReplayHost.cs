namespace VfioLab.Scenarios.Import;

/// <summary>The replay's host, settled: options over what the trace says, and the process ranges to mmap.</summary>
/// <param name="Name">The scenario's name.</param>
/// <param name="Options">The options as given.</param>
/// <param name="Memory">Host RAM in bytes.</param>
/// <param name="Device">The device's PCI address.</param>
/// <param name="Group">Its IOMMU group.</param>
/// <param name="DmaEntryLimit">type1's <c>dma_entry_limit</c>: the option's, else the one QEMU's warning reports,
/// else null (the kernel's default).</param>
/// <param name="Ranges">Page-aligned, disjoint, non-adjacent process ranges [Start, End) covering every map's source,
/// in address order.</param>
internal sealed record ReplayHost(string Name, QemuTraceImportOptions Options, ulong Memory, string Device, int Group, uint? DmaEntryLimit, IReadOnlyList<(ulong Start, ulong End)> Ranges)
{
    /// <summary>The range an address falls in (its index), the binding the replay uses for it.</summary>
    public int RangeOf(ulong vaddr)
    {
        int lo = 0;
        int hi = Ranges.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (vaddr < Ranges[mid].Start)
            {
                hi = mid - 1;
            }
            else if (vaddr >= Ranges[mid].End)
            {
                lo = mid + 1;
            }
            else
            {
                return mid;
            }
        }
        return -1;
    }
}
