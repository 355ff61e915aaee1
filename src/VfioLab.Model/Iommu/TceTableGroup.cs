using System.Numerics;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>
/// The DMA windows of one partitionable endpoint (struct iommu_table_group of a PowerNV IODA2 PE,
/// arch/powerpc/platforms/powernv/pci-ioda.c and pci-ioda-tce.c): the default 32-bit window's place
/// (<c>tce32_start</c>, <c>tce32_size</c>), the TCE page sizes and levels the PHB supports, up to
/// <see cref="MaxWindows"/> window slots, and the table-group ops VFIO uses: take/release ownership,
/// <c>get_table_size</c>, <c>create_table</c>, <c>set_window</c>, <c>unset_window</c>. Device DMA
/// translates through whichever window holds the bus address.
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c> (a leaf lock; never held while taking another) protects <c>_windows</c> and
/// <c>_owned</c>. Never change: the limits. While the kernel owns the PE its own DMA window is
/// not modelled (no device DMA before VFIO takes ownership); once VFIO owns it the PE has no window
/// until VFIO programs one.
/// </remarks>
internal sealed class TceTableGroup
{
    /// <summary><c>IOMMU_TABLE_GROUP_MAX_TABLES</c>: window slots per PE.</summary>
    public const int MaxWindows = 2;

    /// <summary><c>POWERNV_IOMMU_MAX_LEVELS</c>.</summary>
    public const int MaxLevels = 5;

    /// <summary><c>pe-&gt;tce_bypass_base</c>: where IODA2 places the second window (1 &lt;&lt; 59).</summary>
    public const ulong BypassBase = 1UL << 59;

    private readonly object _lock = new();
    private readonly TceTable?[] _windows = new TceTable?[MaxWindows];
    private bool _owned;

    /// <summary>A PE with the default window <paramref name="tce32"/> and TCE sizes <paramref name="pgSizes"/>.</summary>
    public TceTableGroup(ByteRange tce32, ulong pgSizes, FaultInjector faults)
    {
        Tce32Start = tce32.Start;
        Tce32Size = tce32.Last - tce32.Start + 1;
        PgSizes = pgSizes;
        Faults = faults;
    }

    /// <summary><c>tce32_start</c>: bus address of the default 32-bit window.</summary>
    public ulong Tce32Start { get; }

    /// <summary><c>tce32_size</c>: size of the default 32-bit window in bytes.</summary>
    public ulong Tce32Size { get; }

    /// <summary><c>pgsizes</c>: supported TCE page sizes as a bitmap.</summary>
    public ulong PgSizes { get; }

    /// <summary><c>max_dynamic_windows_supported</c>.</summary>
    public int MaxDynamicWindows => MaxWindows;

    /// <summary>Failure injection shared with the host (site <c>tce_table_alloc</c>).</summary>
    public FaultInjector Faults { get; }

    /// <summary>Whether an external user (VFIO) owns the PE.</summary>
    public bool Owned
    {
        get { lock (_lock) { return _owned; } }
    }

    /// <summary>The programmed windows by slot (null where none).</summary>
    public TceTable?[] Windows
    {
        get { lock (_lock) { return [.. _windows]; } }
    }

    /// <summary><c>take_ownership</c>: the platform's own DMA window goes; VFIO programs windows from now on.</summary>
    public void TakeOwnership()
    {
        lock (_lock)
        {
            _owned = true;
        }
    }

    /// <summary><c>release_ownership</c>: every window is unset. Never fails.</summary>
    public void ReleaseOwnership()
    {
        lock (_lock)
        {
            Array.Clear(_windows);
            _owned = false;
        }
    }

    /// <summary>
    /// <c>pnv_pci_ioda2_get_table_size</c>: bytes of host memory a table for this window needs, the hardware
    /// table and the userspace copy (twice the hardware levels). 0 for levels outside 1..5, a window size that
    /// is not a power of two, or (a model guard for the kernel's unsigned underflow) a window smaller than
    /// one TCE page.
    /// </summary>
    public static ulong GetTableSize(int pageShift, ulong windowSize, int levels, int hostPageShift)
    {
        if (levels < 1 || levels > MaxLevels || !BitOperations.IsPow2(windowSize) || pageShift >= 64 || windowSize < (1UL << pageShift))
        {
            return 0;
        }
        int windowShift = BitOperations.Log2(windowSize);
        int entriesShift = windowShift - pageShift;
        int tableShift = entriesShift + 3;
        if (tableShift >= 64)
        {
            return 0;
        }
        ulong tceTableSize = Math.Max(0x1000UL, 1UL << tableShift);
        int levelEntriesShift = (entriesShift + levels - 1) / levels;
        int directShift = Math.Max(levelEntriesShift + 3, hostPageShift);
        ulong direct = 1UL << directShift;
        ulong bytes = 0;
        for (int l = levels; l > 0; l--)
        {
            bytes += AlignUp(tceTableSize, direct);
            tceTableSize = Math.Max((tceTableSize / direct) << 3, direct);
        }
        return bytes + bytes;
    }

    /// <summary>
    /// <c>pnv_pci_ioda2_create_table</c>: a table for slot <paramref name="num"/>, placed at
    /// <c>tce32_start</c> for slot 0 and at <see cref="BypassBase"/> for slot 1. The entry count is the
    /// window's, but never below one host page of TCEs (the table is at least a page).
    /// </summary>
    /// <returns>None; EINVAL for levels outside 1..5, a window that is not a power of two, or a table
    /// too deep (<c>(level_shift - 3) * levels + page_shift &gt;= 55</c>); ENOMEM from the fault site
    /// <c>tce_table_alloc</c>.</returns>
    public Errno CreateTable(int num, int pageShift, ulong windowSize, int levels, int hostPageShift, ulong chargedPages, out TceTable? table)
    {
        table = null;
        if (levels < 1 || levels > MaxLevels || !BitOperations.IsPow2(windowSize) || windowSize < (1UL << pageShift))
        {
            return Refusals.Refuse(Errno.EINVAL, "pnv_pci_ioda2_table_alloc_pages",
                "levels {0} must be 1..{1}, and window size 0x{2:x} a power of two of at least one TCE page (page_shift {3})", (ulong)levels, MaxLevels, windowSize,
                (ulong)pageShift);
        }
        int entriesShift = BitOperations.Log2(windowSize) - pageShift;
        int tableShift = Math.Max(entriesShift + 3, hostPageShift);
        int levelShift = Math.Max(((entriesShift + levels - 1) / levels) + 3, hostPageShift);
        if (((levelShift - 3) * levels) + pageShift >= 55 || tableShift >= 61)
        {
            return Refusals.Refuse(Errno.EINVAL, "pnv_pci_ioda2_table_alloc_pages", "a table of {0} levels for a window of 0x{1:x} with page_shift {2} would be too deep",
                (ulong)levels, windowSize, (ulong)pageShift);
        }
        if (Faults.ShouldFail(FaultSite.TceTableAlloc))
        {
            return Refusals.Refuse(Errno.ENOMEM, "pnv_pci_ioda2_table_alloc_pages", "allocating the TCE table failed (injected)");
        }
        ulong busOffset = num == 0 ? Tce32Start : BypassBase;
        table = new TceTable(num, busOffset >> pageShift, 1UL << (tableShift - 3), pageShift, levels, chargedPages);
        return Errno.None;
    }

    /// <summary><c>set_window</c>: the PE translates through <paramref name="table"/> in slot <paramref name="num"/>.
    /// ENOMEM from the fault site <c>tce_set_window</c> (an OPAL failure).</summary>
    public Errno SetWindow(int num, TceTable table)
    {
        if (Faults.ShouldFail(FaultSite.TceSetWindow))
        {
            return Refusals.Refuse(Errno.ENOMEM, "pnv_pci_ioda2_set_window", "programming window {0} failed (injected)", (ulong)num);
        }
        lock (_lock)
        {
            _windows[num] = table;
        }
        return Errno.None;
    }

    /// <summary><c>unset_window</c>. Never fails.</summary>
    public void UnsetWindow(int num)
    {
        lock (_lock)
        {
            _windows[num] = null;
        }
    }

    /// <summary>The PHB's translation at <paramref name="iova"/>: the window holding it, or a fault.</summary>
    public IommuTranslation Translate(Iova iova, bool write)
    {
        TceTable? hit = null;
        lock (_lock)
        {
            if (!_owned)
            {
                return IommuTranslation.Faulted(IommuFaultReason.NoDomain);
            }
            foreach (TceTable? t in _windows)
            {
                if (t is not null && t.ContainsEntry(iova.Value >> t.PageShift))
                {
                    hit = t;
                    break;
                }
            }
        }
        return hit is null ? IommuTranslation.Faulted(IommuFaultReason.NotMapped) : hit.Translate(iova, write);
    }

    /// <summary>Valid TCEs over every programmed window (scenario <c>check: iommu_entries</c>).</summary>
    public ulong ValidEntries
    {
        get
        {
            ulong n = 0;
            foreach (TceTable? t in Windows)
            {
                n += t?.ValidEntries ?? 0;
            }
            return n;
        }
    }

    private static ulong AlignUp(ulong value, ulong align) => (value + align - 1) & ~(align - 1);
}
