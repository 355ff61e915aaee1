namespace VfioLab.Lab;

/// <summary>
/// The names of the invariants the checker evaluates: scenario files (<c>expect_violation</c>) and
/// <see cref="LabViolation.Invariant"/> use these constants, each an alias of the checker's own definition.
/// </summary>
public static class InvariantNames
{
    /// <summary>No two mappings of a container overlap.</summary>
    public const string MappingsDisjoint = Checks.InvariantName.MappingsDisjoint;

    /// <summary><c>dma_avail</c> plus live mappings equals <c>dma_entry_limit</c>.</summary>
    public const string DmaAvailConserved = Checks.InvariantName.DmaAvailConserved;

    /// <summary>Every domain of a container maps exactly the container's mappings.</summary>
    public const string DomainsAgree = Checks.InvariantName.DomainsAgree;

    /// <summary>Every IOMMU entry translates to a pinned frame or to the BAR of a live device the backend holds.</summary>
    public const string TranslationBacked = Checks.InvariantName.TranslationBacked;

    /// <summary>A process's <c>locked_vm</c> equals what the backends charged it.</summary>
    public const string LockedVmMatchesCharges = Checks.InvariantName.LockedVmMatchesCharges;

    /// <summary><c>locked_vm</c> stays within RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.</summary>
    public const string LockedVmWithinLimit = Checks.InvariantName.LockedVmWithinLimit;

    /// <summary>A host page is charged once per mapping that pins it.</summary>
    public const string HostPageChargedOncePerMapping = Checks.InvariantName.HostPageChargedOncePerMapping;

    /// <summary>A mediated device's pinned pages (<c>vfio_pfn</c>) agree with their mapping.</summary>
    public const string VpfnConsistent = Checks.InvariantName.VpfnConsistent;

    /// <summary>The count of mappings awaiting a VADDR update matches the mappings marked invalid.</summary>
    public const string VaddrInvalidCount = Checks.InvariantName.VaddrInvalidCount;

    /// <summary>While dirty tracking is on, every mapping has its bitmap.</summary>
    public const string DirtyBitmapsPresent = Checks.InvariantName.DirtyBitmapsPresent;

    /// <summary>The count of groups that do not pin pages matches the container's groups.</summary>
    public const string NonPinnedGroupsCount = Checks.InvariantName.NonPinnedGroupsCount;

    /// <summary>Every mapping lies inside the container's valid IOVA ranges.</summary>
    public const string MappingInIovaRange = Checks.InvariantName.MappingInIovaRange;

    /// <summary>The container's page-size bitmap is what its domains allow.</summary>
    public const string PgsizeBitmap = Checks.InvariantName.PgsizeBitmap;

    /// <summary>A group is attached to one container once.</summary>
    public const string GroupAttachedOnce = Checks.InvariantName.GroupAttachedOnce;

    /// <summary>Pages are unpinned only after the IOTLB flush that follows their unmap.</summary>
    public const string UnpinAfterFlush = Checks.InvariantName.UnpinAfterFlush;

    /// <summary>A container with nothing attached holds no mapping, pin or charge.</summary>
    public const string EmptyContainerClean = Checks.InvariantName.EmptyContainerClean;

    /// <summary>Frame pin counts equal the pins the backends and drivers hold.</summary>
    public const string PinsBalanced = Checks.InvariantName.PinsBalanced;

    /// <summary>No CPU mapping of a BAR while its memory decode is off or it is in reset.</summary>
    public const string NoCpuMappingOfDisabledBar = Checks.InvariantName.NoCpuMappingOfDisabledBar;

    /// <summary>type1's unmap notification gave up after 10 retries (the kernel's BUG()).</summary>
    public const string NotifierRetryLimit = Checks.InvariantName.NotifierRetryLimit;

    /// <summary>No IOMMU entry translates to the BAR of a released device.</summary>
    public const string NoTranslationToReleasedDevice = Checks.InvariantName.NoTranslationToReleasedDevice;

    /// <summary>A PFNMAP mapping of a device BAR holds a reference to that device.</summary>
    public const string PfnmapDeviceReferenced = Checks.InvariantName.PfnmapDeviceReferenced;

    /// <summary>A sPAPR table's userspace view agrees with its TCEs.</summary>
    public const string TceUserspaceConsistent = Checks.InvariantName.TceUserspaceConsistent;

    /// <summary>A pre-registered sPAPR region is never released while mapped.</summary>
    public const string PreregNotReleasedWhileMapped = Checks.InvariantName.PreregNotReleasedWhileMapped;

    /// <summary>A sPAPR container works on one mm.</summary>
    public const string ContainerSingleMm = Checks.InvariantName.ContainerSingleMm;

    /// <summary>Every invariant name, in the order the checker reports them.</summary>
    public static IReadOnlyList<string> All { get; } = Checks.InvariantName.All;

    /// <summary>Whether <paramref name="name"/> is one of <see cref="All"/>.</summary>
    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
