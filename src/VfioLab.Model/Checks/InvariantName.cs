namespace VfioLab.Checks;

/// <summary>
/// The names of the invariants the checker evaluates, defined once (SCENARIOS.md): every report site of
/// <see cref="InvariantChecker"/> names one of these constants, <see cref="InvariantChecker.Checked"/> is
/// <see cref="All"/>, and Lab's public <c>InvariantNames</c> aliases each.
/// </summary>
internal static class InvariantName
{
    /// <summary>No two mappings of a container overlap.</summary>
    public const string MappingsDisjoint = "mappings-disjoint";

    /// <summary><c>dma_avail</c> plus live mappings equals <c>dma_entry_limit</c>.</summary>
    public const string DmaAvailConserved = "dma-avail-conserved";

    /// <summary>Every domain of a container maps exactly the container's mappings.</summary>
    public const string DomainsAgree = "domains-agree";

    /// <summary>Every IOMMU entry translates to a pinned frame or to the BAR of a live device the backend holds.</summary>
    public const string TranslationBacked = "translation-backed";

    /// <summary>A process's <c>locked_vm</c> equals what the backends charged it.</summary>
    public const string LockedVmMatchesCharges = "locked-vm-matches-charges";

    /// <summary><c>locked_vm</c> stays within RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.</summary>
    public const string LockedVmWithinLimit = "locked-vm-within-limit";

    /// <summary>A host page is charged once per mapping that pins it.</summary>
    public const string HostPageChargedOncePerMapping = "host-page-charged-once-per-mapping";

    /// <summary>A mediated device's pinned pages (<c>vfio_pfn</c>) agree with their mapping.</summary>
    public const string VpfnConsistent = "vpfn-consistent";

    /// <summary>The count of mappings awaiting a VADDR update matches the mappings marked invalid.</summary>
    public const string VaddrInvalidCount = "vaddr-invalid-count";

    /// <summary>While dirty tracking is on, every mapping has its bitmap.</summary>
    public const string DirtyBitmapsPresent = "dirty-bitmaps-present";

    /// <summary>The count of groups that do not pin pages matches the container's groups.</summary>
    public const string NonPinnedGroupsCount = "non-pinned-groups-count";

    /// <summary>Every mapping lies inside the container's valid IOVA ranges.</summary>
    public const string MappingInIovaRange = "mapping-in-iova-range";

    /// <summary>The container's page-size bitmap is what its domains allow.</summary>
    public const string PgsizeBitmap = "pgsize-bitmap";

    /// <summary>A group is attached to one container once.</summary>
    public const string GroupAttachedOnce = "group-attached-once";

    /// <summary>Pages are unpinned only after the IOTLB flush that follows their unmap.</summary>
    public const string UnpinAfterFlush = "unpin-after-flush";

    /// <summary>A container with nothing attached holds no mapping, pin or charge.</summary>
    public const string EmptyContainerClean = "empty-container-clean";

    /// <summary>Frame pin counts equal the pins the backends and drivers hold.</summary>
    public const string PinsBalanced = "pins-balanced";

    /// <summary>No CPU mapping of a BAR while its memory decode is off or it is in reset.</summary>
    public const string NoCpuMappingOfDisabledBar = "no-cpu-mapping-of-disabled-bar";

    /// <summary>type1's unmap notification gave up after 10 retries (the kernel's BUG()).</summary>
    public const string NotifierRetryLimit = "notifier-retry-limit";

    /// <summary>No IOMMU entry translates to the BAR of a released device.</summary>
    public const string NoTranslationToReleasedDevice = "no-translation-to-released-device";

    /// <summary>A PFNMAP mapping of a device BAR holds a reference to that device.</summary>
    public const string PfnmapDeviceReferenced = "pfnmap-device-referenced";

    /// <summary>A sPAPR table's userspace view agrees with its TCEs.</summary>
    public const string TceUserspaceConsistent = "tce-userspace-consistent";

    /// <summary>A pre-registered sPAPR region is never released while mapped.</summary>
    public const string PreregNotReleasedWhileMapped = "prereg-not-released-while-mapped";

    /// <summary>A sPAPR container works on one mm.</summary>
    public const string ContainerSingleMm = "container-single-mm";

    /// <summary>Every invariant name, in the order the checker reports them.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        MappingsDisjoint, DmaAvailConserved, DomainsAgree, TranslationBacked, LockedVmMatchesCharges, LockedVmWithinLimit,
        HostPageChargedOncePerMapping, VpfnConsistent, VaddrInvalidCount, DirtyBitmapsPresent, NonPinnedGroupsCount,
        MappingInIovaRange, PgsizeBitmap, GroupAttachedOnce, UnpinAfterFlush, EmptyContainerClean, PinsBalanced,
        NoCpuMappingOfDisabledBar, NotifierRetryLimit, NoTranslationToReleasedDevice, PfnmapDeviceReferenced,
        TceUserspaceConsistent, PreregNotReleasedWhileMapped, ContainerSingleMm,
    ];

}
