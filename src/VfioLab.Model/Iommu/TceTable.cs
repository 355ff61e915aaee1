using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>
/// One TCE table, a DMA window of a POWER PHB (struct iommu_table, arch/powerpc/kernel/iommu.c): the
/// entries <c>[Offset, Offset + Size)</c> of TCE page size <c>1 &lt;&lt; PageShift</c>, so the window covers bus
/// addresses <c>[Offset &lt;&lt; PageShift, (Offset + Size) &lt;&lt; PageShift)</c>. Valid entries are a run map keyed
/// by entry index (no per-entry object); an absent key is an invalid TCE (<c>DMA_NONE</c>). Entries past the window
/// can be written (VFIO checks only a range's first TCE; <c>pnv_tce</c> writes past a one-level table's end or into a
/// level it allocates on demand): they are kept but never translated (the PHB's window ends at
/// <c>Offset + Size</c>).
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c> (rank <see cref="LockRank.TceTable"/>) protects <c>_entries</c>. Never change:
/// <see cref="Offset"/>, <see cref="Size"/>, <see cref="PageShift"/>, <see cref="Levels"/>,
/// <see cref="ChargedPages"/>, <see cref="Number"/>. The owner (the sPAPR backend, under its container lock)
/// decides what goes in; the device's DMA reads the table concurrently, as the PHB does.
/// </remarks>
internal sealed class TceTable
{
    private readonly OrderedLock _lock = new(LockRank.TceTable);
    private readonly RunMap<TceEntryRun> _entries = new(32);

    /// <summary>Creates an empty table of <paramref name="size"/> entries from entry <paramref name="offset"/>.</summary>
    public TceTable(int number, ulong offset, ulong size, int pageShift, int levels, ulong chargedPages)
    {
        Number = number;
        Offset = offset;
        Size = size;
        PageShift = pageShift;
        Levels = levels;
        ChargedPages = chargedPages;
    }

    /// <summary>The window slot (0: the default 32-bit window, 1: the 64-bit dynamic window).</summary>
    public int Number { get; }

    /// <summary><c>it_offset</c>: the first entry's index (bus address &gt;&gt; page shift).</summary>
    public ulong Offset { get; }

    /// <summary><c>it_size</c>: number of entries.</summary>
    public ulong Size { get; }

    /// <summary><c>it_page_shift</c>: log2 of the TCE page size.</summary>
    public int PageShift { get; }

    /// <summary>Table levels (<c>it_indirect_levels + 1</c>).</summary>
    public int Levels { get; }

    /// <summary>Host pages charged to <c>locked_vm</c> for the table's memory (the kernel charges
    /// <c>get_table_size</c>, the hardware table plus its userspace copy).</summary>
    public ulong ChargedPages { get; }

    /// <summary>TCE page size in bytes.</summary>
    public ulong PageSize => 1UL << PageShift;

    /// <summary>The bus addresses the window covers, inclusive.</summary>
    public ByteRange Window => new(Offset << PageShift, ((Offset + Size) << PageShift) - 1);

    /// <summary>Whether <paramref name="entry"/> is inside the window.</summary>
    public bool ContainsEntry(ulong entry) => entry >= Offset && entry - Offset < Size;

    /// <summary>Number of valid TCEs.</summary>
    public ulong ValidEntries
    {
        get
        {
            using (_lock.EnterScope())
            {
                ulong n = 0;
                foreach (Run<TceEntryRun> r in _entries.All())
                {
                    n += r.Last - r.Start + 1;
                }
                return n;
            }
        }
    }

    /// <summary>The valid runs, in entry order (a copy).</summary>
    public List<Run<TceEntryRun>> Runs()
    {
        using (_lock.EnterScope())
        {
            var list = new List<Run<TceEntryRun>>(_entries.Count);
            foreach (Run<TceEntryRun> r in _entries.All())
            {
                list.Add(r);
            }
            return list;
        }
    }

    /// <summary>
    /// <c>iommu_tce_xchg</c> over a run: entries <c>[first, first + count)</c> become <paramref name="value"/>
    /// (advancing per entry); the valid entries they replace are appended to <paramref name="replaced"/> for
    /// the caller to release. Never fails; the range starts at or after the window's first entry (a caller bug
    /// otherwise) and may run past its end, as VFIO's MAP lets it (<c>iommu_tce_check_ioba</c> checks the first TCE).
    /// </summary>
    public void Exchange(ulong first, ulong count, TceEntryRun value, List<Run<TceEntryRun>> replaced)
    {
        AssertInside(first, count);
        using (_lock.EnterScope())
        {
            CollectLocked(first, first + count - 1, replaced);
            _entries.Set(first, first + count - 1, value);
        }
    }

    /// <summary><c>iommu_tce_xchg</c> to DMA_NONE over <c>[first, first + count)</c>: the valid entries
    /// cleared are appended to <paramref name="cleared"/>. Never fails.</summary>
    public void Clear(ulong first, ulong count, List<Run<TceEntryRun>> cleared)
    {
        if (count == 0)
        {
            return;
        }
        AssertInside(first, count);
        using (_lock.EnterScope())
        {
            CollectLocked(first, first + count - 1, cleared);
            _entries.Remove(first, first + count - 1);
        }
    }

    /// <summary>
    /// The PHB's translation of one device access at bus address <paramref name="iova"/>: the TCE's host
    /// address plus the offset in the TCE page, and how many bytes the same run continues; a fault when the
    /// TCE is invalid or lacks the direction (TCE_PCI_WRITE for a device write, TCE_PCI_READ for a read).
    /// </summary>
    public IommuTranslation Translate(Iova iova, bool write)
    {
        ulong entry = iova.Value >> PageShift;
        using (_lock.EnterScope())
        {
            if (!_entries.TryGet(entry, out Run<TceEntryRun> run))
            {
                return IommuTranslation.Faulted(IommuFaultReason.NotMapped);
            }
            TceEntryRun v = run.Value.Advance(entry - run.Start);
            IommuProt need = write ? IommuProt.Write : IommuProt.Read;
            if ((v.Prot & need) == 0)
            {
                return IommuTranslation.Faulted(write ? IommuFaultReason.WriteDenied : IommuFaultReason.ReadDenied);
            }
            ulong inPage = iova.Value & (PageSize - 1);
            // The run may go on past the window (see the summary); the PHB's window does not.
            ulong contiguous = ((Math.Min(run.Last, Offset + Size - 1) - entry + 1) << PageShift) - inPage;
            return new IommuTranslation(IommuFaultReason.None, new PhysAddr(v.Hpa + inPage), contiguous, v.Prot, PageSize);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"tce table #{Number} {Window} ({1UL << PageShift:x} pages, 0x{Size:x} entries, {Levels} level(s))";

    private void CollectLocked(ulong first, ulong last, List<Run<TceEntryRun>> into)
    {
        _lock.AssertHeld();
        foreach (Run<TceEntryRun> r in _entries.Overlapping(first, last))
        {
            ulong s = Math.Max(r.Start, first);
            ulong l = Math.Min(r.Last, last);
            into.Add(new Run<TceEntryRun>(s, l, r.Value.Advance(s - r.Start)));
        }
    }

    private void AssertInside(ulong first, ulong count) =>
        System.Diagnostics.Debug.Assert(count > 0 && first >= Offset && first + count - 1 >= first, "TCE range below the table or wrapping");
}
