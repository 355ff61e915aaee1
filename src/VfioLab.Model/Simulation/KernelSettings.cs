namespace VfioLab.Simulation;

/// <summary>
/// The behaviour profile of the simulated kernel: the named profile (<c>seeds</c>, <c>linux-6.18</c> or
/// an LTS kernel, <c>linux-6.12</c> or <c>linux-6.1</c>), historical quirks switched back on, and the VFIO module parameters.
/// Backends read it; it never changes after the host is built.
/// </summary>
internal sealed record KernelSettings(
    string Profile,
    IReadOnlyList<string> Quirks,
    uint DmaEntryLimit = 65535,
    bool DisableHugepages = false,
    bool AllowUnsafeInterrupts = false,
    bool StrictMmioMaps = true)
{
    /// <summary>Today's type1 semantics plus the seeds' strict device-memory design (the default).</summary>
    public const string Seeds = "seeds";

    /// <summary>Upstream Linux 6.18 exactly.</summary>
    public const string Linux618 = "linux-6.18";

    /// <summary>The 6.12 LTS kernel: <c>linux-6.18</c> with the switches of <see cref="IsLts"/>.</summary>
    public const string Linux612 = "linux-6.12";

    /// <summary>The 6.1 LTS kernel: <c>linux-6.12</c>'s switches plus the pre-v6.6 GET_INFO layout.</summary>
    public const string Linux61 = "linux-6.1";

    /// <summary>Whether the profile is an LTS kernel older than v6.13 (<c>linux-6.1</c> or <c>linux-6.12</c>).</summary>
    private bool IsLts => Profile is Linux61 or Linux612;

    /// <summary>The default profile with default parameters.</summary>
    public static KernelSettings Default { get; } = new(Seeds, []);

    /// <summary>Whether a historical quirk is switched on.</summary>
    public bool Has(string quirk) => Quirks.Contains(quirk, StringComparer.Ordinal);

    /// <summary>The type1 backend's switches under this profile. <c>seeds</c> and <c>linux-6.18</c> agree on
    /// type1 itself except for device memory (PFNMAP): <c>seeds</c> has the 2021 RFC's device-memory design
    /// with <c>strict_mmio_maps</c> (seed 003); both include the v6.18 EOVERFLOW and end-of-address-space
    /// fixes. Quirk <c>pfnmap-vm-pgoff-translation</c> (seed 001) turns the PFNMAP page walk back into
    /// vm_pgoff arithmetic; quirk <c>iommu-notifier-chain</c> brings back the v4.10-v5.19 registration of
    /// mediated devices for unmap notifications; quirk <c>unmap-owner-check</c> the v4.10-v5.19 UNMAP that stops
    /// at another mm's mapping (8f0d5bb95f76 to ffed0518d871); quirk <c>exec-locked-vm-underflow</c> the
    /// accounting of the task's current mm before v6.3 (046eca5018f8); quirk <c>async-lock-accounting</c> the
    /// workqueue accounting of before 0cfef2b7410b (seed 004); quirk <c>subpage-iommu-pages</c> the unfolded page-size
    /// bitmap of the sub-PAGE_SIZE RFC (seed 000: Eric Auger, 28 Oct 2015, reviewed by Alex Williamson).</summary>
    /// <remarks>The LTS profiles (docs/architecture.md "Kernel profiles"): both lack v6.18's EOVERFLOW and
    /// end-of-address-space fixes (6012379ede6a, ef270ec44637, merged for v6.18-rc4) and still advertise
    /// VFIO_TYPE1_NESTING_IOMMU (removed by 35890f85573c, v6.13); <c>linux-6.1</c> also has the unpadded GET_INFO
    /// capabilities and copy size of before a881b496941f (v6.6).</remarks>
    public Type1.Type1Behavior Type1Behavior() => new(DmaEntryLimit, DisableHugepages, AllowUnsafeInterrupts, OverflowIsEoverflow: !IsLts,
        UnmapNotifierChain: Has(QuirkIommuNotifierChain), DeviceMemoryNotifier: Profile == Seeds, StrictMmioMaps: StrictMmioMaps,
        PfnmapVmPgoffTranslation: Has(QuirkPfnmapVmPgoffTranslation), UnmapOwnerCheck: Has(QuirkUnmapOwnerCheck),
        ExecLockedVmUnderflow: Has(QuirkExecLockedVmUnderflow), AsyncLockAccounting: Has(QuirkAsyncLockAccounting),
        SubpageIommuPages: Has(QuirkSubpageIommuPages), NestingIommuExtension: IsLts, UnalignedInfoCaps: Profile == Linux61);

    /// <summary>vfio-pci's switches: quirk <c>zap-range-pgoff-mismatch</c> (seed 003, RFC 04/10 of 22 Feb 2021); under
    /// <c>linux-6.1</c> the DEVICE_GET_INFO copy size of before a881b496941f (v6.6).</summary>
    public Vfio.Pci.VfioPciBehavior VfioPciBehavior() => new(ZapRangePgoffMismatch: Has(QuirkZapRangePgoffMismatch),
        UnalignedInfoCaps: Profile == Linux61);

    /// <summary>The sPAPR TCE backend's switches: quirk <c>spapr-tce-current-mm</c> (before bc82d122ae4a, v4.10,
    /// the container did not record its mm: seed 002's fork question); for <c>linux-6.1</c> no clearing of the tables'
    /// TCEs when a group detaches (4ba2fdff2eb1 came in v6.11, backported to 6.6.y and 6.10.y but not to 6.1.y).</summary>
    public Spapr.SpaprBehavior SpaprBehavior() => new(ContainerRecordsMm: !Has(QuirkSpaprTceCurrentMm),
        ClearTcesOnDetach: Profile != Linux61);

    /// <summary>GUP's switches: under <c>linux-6.1</c> a read-only long-term pin of private memory returns the shared
    /// zero page for an untouched page (type1 maps it as a reserved pfn and does not charge it); from 84209e87c696
    /// ("mm/gup: reliable R/O long-term pinning in COW mappings", 16 Nov 2022, v6.2) it unshares it into a charged
    /// page of the process. Found by the conformance rig (docs/conformance.md, difference 2).</summary>
    public Host.GupBehavior GupBehavior() => new(LongTermPinUnsharesZeroPage: Profile != Linux61);

    /// <summary>VFIO_GROUP_SET_CONTAINER's answer for an fd that is not a container: EINVAL under <c>linux-6.1</c>,
    /// EBADFD since "vfio-iommufd: Allow iommufd to be used in place of a container fd" (v6.2, Jason Gunthorpe's
    /// vfio_iommufd series of Nov 2022), where an fd that is neither a container nor an iommufd is EBADFD. Found by the
    /// conformance rig (docs/conformance.md).</summary>
    public Abi.Errno GroupNotAContainerError => Profile == Linux61 ? Abi.Errno.EINVAL : Abi.Errno.EBADFD;

    /// <summary>Quirk name: the sPAPR container works on the caller's mm, not the first user's (before bc82d122ae4a).</summary>
    public const string QuirkSpaprTceCurrentMm = "spapr-tce-current-mm";

    /// <summary>Quirk name: BAR mmaps keep the physical pfn in vm_pgoff while the zap range is in region-offset space.</summary>
    public const string QuirkZapRangePgoffMismatch = "zap-range-pgoff-mismatch";

    /// <summary>Quirk name: type1 computes a PFNMAP pfn from vm_pgoff (before 5cbf3264bc71, seed 001).</summary>
    public const string QuirkPfnmapVmPgoffTranslation = "pfnmap-vm-pgoff-translation";

    /// <summary>Quirk name: mediated-device drivers register their own DMA_UNMAP notifier (v4.10-v5.19).</summary>
    public const string QuirkIommuNotifierChain = "iommu-notifier-chain";

    /// <summary>Quirk name: UNMAP stops silently at a mapping whose owner task has another mm (v4.10-v5.19).</summary>
    public const string QuirkUnmapOwnerCheck = "unmap-owner-check";

    /// <summary>Quirk name: locked_vm accounting follows the owner task's current mm, so exec underflows it (before v6.3).</summary>
    public const string QuirkExecLockedVmUnderflow = "exec-locked-vm-underflow";

    /// <summary>Quirk name: locked_vm updates deferred to a workqueue when the mmap lock is contended (before 0cfef2b7410b, seed 004).</summary>
    public const string QuirkAsyncLockAccounting = "async-lock-accounting";

    /// <summary>Quirk name: IOMMU page sizes below PAGE_SIZE advertised by GET_INFO, MAP/UNMAP still PAGE_SIZE aligned (2015 RFC, seed 000).</summary>
    public const string QuirkSubpageIommuPages = "subpage-iommu-pages";
}
