using VfioLab.Simulation;

namespace VfioLab.Lab;

/// <summary>
/// Named historical behaviours a host can switch on, each citing the kernel change or seed it comes from
/// (docs/architecture.md "Historical quirks" says where each acts).
/// </summary>
public static class KernelQuirks
{
    /// <summary>type1 before 0cfef2b7410b (2017, seed 004): locked-memory charges deferred to a workqueue when mmap_lock is contended.</summary>
    public const string AsyncLockAccounting = KernelSettings.QuirkAsyncLockAccounting;

    /// <summary>The 2015 sub-PAGE_SIZE RFC (seed 000): IOMMU page sizes below PAGE_SIZE advertised.</summary>
    public const string SubpageIommuPages = KernelSettings.QuirkSubpageIommuPages;

    /// <summary>type1 before 5cbf3264bc71 (2020, seed 001): PFNMAP translated through vm_pgoff.</summary>
    public const string PfnmapVmPgoffTranslation = KernelSettings.QuirkPfnmapVmPgoffTranslation;

    /// <summary>The 2021 RFC's first zap range (seed 003): the range encoded in the wrong pgoff space.</summary>
    public const string ZapRangePgoffMismatch = KernelSettings.QuirkZapRangePgoffMismatch;

    /// <summary>type1 of v4.10-v5.19 (8f0d5bb95f76 until ffed0518d871): UNMAP stops at another mm's mapping.</summary>
    public const string UnmapOwnerCheck = KernelSettings.QuirkUnmapOwnerCheck;

    /// <summary>type1 before v6.3 (046eca5018f8): the un-charge after exec targets the new mm and underflows.</summary>
    public const string ExecLockedVmUnderflow = KernelSettings.QuirkExecLockedVmUnderflow;

    /// <summary>Before v6.0: unmap notifications through the IOMMU notifier chain rather than a driver callback.</summary>
    public const string IommuNotifierChain = KernelSettings.QuirkIommuNotifierChain;

    /// <summary>sPAPR TCE before the container recorded its mm (seed 002): every call uses current->mm.</summary>
    public const string SpaprTceCurrentMm = KernelSettings.QuirkSpaprTceCurrentMm;

    /// <summary>Every quirk name; each is modelled.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        AsyncLockAccounting, SubpageIommuPages, PfnmapVmPgoffTranslation, ZapRangePgoffMismatch, UnmapOwnerCheck,
        ExecLockedVmUnderflow, IommuNotifierChain, SpaprTceCurrentMm,
    ];

    /// <summary>Whether <paramref name="name"/> is one of <see cref="All"/>.</summary>
    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
