namespace VfioLab.Scenarios.Model;

/// <summary>The fixed quirk names of SCENARIOS.md: each switches one historical kernel behaviour back on. Add, never rename.</summary>
internal static class QuirkNames
{
    /// <summary>Seed 004: locked_vm accounting deferred to a workqueue when mmap_lock is contended (before 0cfef2b7410b).</summary>
    public const string AsyncLockAccounting = "async-lock-accounting";

    /// <summary>Seed 000: IOMMU page sizes below PAGE_SIZE exposed to users by GET_INFO, MAP/UNMAP still PAGE_SIZE aligned (2015 RFC).</summary>
    public const string SubpageIommuPages = "subpage-iommu-pages";

    /// <summary>Seed 001: PFNMAP pfn computed from vm_pgoff (before 5cbf3264bc71).</summary>
    public const string PfnmapVmPgoffTranslation = "pfnmap-vm-pgoff-translation";

    /// <summary>Seed 003: BAR mmaps keep the physical pfn in vm_pgoff while the zap range is in region-offset space.</summary>
    public const string ZapRangePgoffMismatch = "zap-range-pgoff-mismatch";

    /// <summary>v4.10-v5.19: unmap stops silently at another mm's mapping (8f0d5bb95f76 until ffed0518d871).</summary>
    public const string UnmapOwnerCheck = "unmap-owner-check";

    /// <summary>Before v6.3: accounting follows the task's current mm, so exec underflows it (fixed by 046eca5018f8).</summary>
    public const string ExecLockedVmUnderflow = "exec-locked-vm-underflow";

    /// <summary>v4.10-v5.19: mediated-device drivers register a DMA_UNMAP notifier themselves (a54eb55045ae) instead
    /// of the core registering opened devices with ops-&gt;dma_unmap (ce4b4657ff18, 8cfc5b60751b, v6.0); same protocol.</summary>
    public const string IommuNotifierChain = "iommu-notifier-chain";

    /// <summary>Seed 002: before bc82d122ae4a ("vfio/spapr: Reference mm in tce_container", v4.10) the sPAPR container
    /// did not record its mm; every call pinned and charged in the caller's own mm, so a forked child could map its
    /// pages through the parent's container.</summary>
    public const string SpaprTceCurrentMm = "spapr-tce-current-mm";

    public static readonly IReadOnlyList<string> All =
    [
        AsyncLockAccounting,
        SubpageIommuPages,
        PfnmapVmPgoffTranslation,
        ZapRangePgoffMismatch,
        UnmapOwnerCheck,
        ExecLockedVmUnderflow,
        IommuNotifierChain,
        SpaprTceCurrentMm,
    ];

    /// <summary>The quirks this version models; a scenario naming another is refused rather than run as today.</summary>
    public static readonly IReadOnlyList<string> Modelled = [IommuNotifierChain, PfnmapVmPgoffTranslation, ZapRangePgoffMismatch, UnmapOwnerCheck,
        ExecLockedVmUnderflow, AsyncLockAccounting, SubpageIommuPages, SpaprTceCurrentMm];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
