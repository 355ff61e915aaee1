namespace VfioLab.Scenarios;

/// <summary>
/// What a scenario needed, for operators sizing a VM: per process the peak of <c>locked_vm</c> against
/// RLIMIT_MEMLOCK, per container the peak of DMA mappings against <c>dma_entry_limit</c>, per IOMMU domain the peak of
/// leaf entries and the page-table memory they need. Peaks are sampled after every step.
/// </summary>
/// <param name="Steps">Steps sampled.</param>
/// <param name="Processes">One row per process that ever existed, in pid order.</param>
/// <param name="Containers">One row per container that ever held a backend, in id order.</param>
/// <param name="Domains">One row per IOMMU domain that ever translated for a group, in order of appearance.</param>
/// <param name="TceWindows">One row per sPAPR DMA window that ever existed, in order of appearance.</param>
public sealed record SizingReport(int Steps, IReadOnlyList<ProcessSizing> Processes, IReadOnlyList<ContainerSizing> Containers,
    IReadOnlyList<DomainSizing> Domains, IReadOnlyList<TceWindowSizing> TceWindows)
{
    /// <summary>Writes the report as indented text, a line per row after a heading (what <c>vfiolab run --report</c>
    /// prints).</summary>
    /// <param name="writer">Where the lines go.</param>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void Write(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine($"sizing: peaks over {Steps} step(s), sampled after each step");
        foreach (ProcessSizing p in Processes)
        {
            string limit = p.MemlockLimitBytes == ulong.MaxValue ? "unlimited" : Bytes(p.MemlockLimitBytes);
            writer.WriteLine($"  process {p.Name}: locked_vm peak {Bytes(p.PeakLockedBytes)}, at the end {Bytes(p.FinalLockedBytes)}; RLIMIT_MEMLOCK {limit}{(p.CapIpcLock ? " (CAP_IPC_LOCK)" : string.Empty)}");
        }
        foreach (ContainerSizing c in Containers)
        {
            writer.WriteLine($"  container {c.Id}: DMA mappings peak {c.PeakMappings} of {c.EntryLimit} (dma_entry_limit)");
        }
        foreach (DomainSizing d in Domains)
        {
            string sizes = string.Join(", ", d.EntriesAtPeak.Select(e => $"{PageSize(e.Key)} x {e.Value}"));
            writer.WriteLine($"  domain {d.Name}: IOPTEs peak {d.PeakEntries}{(sizes.Length > 0 ? $" ({sizes})" : string.Empty)}; page tables peak {d.PeakTablePages} x {Bytes(d.Granule)} = {Bytes(d.PeakTableBytes)}");
        }
        foreach (TceWindowSizing t in TceWindows)
        {
            writer.WriteLine($"  {t.Name}: valid TCEs peak {t.PeakValid} of {t.Entries}; table memory charged {Bytes(t.ChargedBytes)}");
        }
    }

    /// <summary>One page size with a binary unit and no space, as page sizes are spoken of: <c>4K</c>, <c>2M</c>, <c>1G</c>.</summary>
    internal static string PageSize(ulong size)
    {
        string[] units = ["", "K", "M", "G", "T", "P", "E"];
        int u = 0;
        while (size >= 1024 && size % 1024 == 0 && u < units.Length - 1)
        {
            size /= 1024;
            u++;
        }
        return $"{size}{units[u]}";
    }

    /// <summary>Bytes in the largest binary unit that divides them exactly (<c>16 GiB</c>, <c>4 KiB</c>, <c>1536 B</c>),
    /// followed by a rounded reading when that unit is small for the number (<c>16777088 KiB (~16.00 GiB)</c>).</summary>
    internal static string Bytes(ulong bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int u = 0;
        ulong exact = bytes;
        while (exact >= 1024 && exact % 1024 == 0 && u < units.Length - 1)
        {
            exact /= 1024;
            u++;
        }
        string text = $"{exact} {units[u]}";
        if (exact < 1024)
        {
            return text;
        }
        int big = Math.Min(units.Length - 1, System.Numerics.BitOperations.Log2(bytes) / 10);
        double approx = bytes / Math.Pow(1024, big);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{text} (~{approx:0.00} {units[big]})");
    }
}
