namespace VfioLab.Diagnostics;

/// <summary>
/// The kind of a trace event, defined once: every event the model emits names one of the members below, so a
/// misspelt kind does not compile. <see cref="Name"/> is what the JSON-lines trace carries; Lab's public
/// <c>TraceKinds</c> lists the same names for VMM authors (a test keeps the two lists equal). Each member says
/// what the event means and, where there is one, its kernel counterpart.
/// </summary>
/// <remarks>The constructor is private: the members below are the only kinds there are.</remarks>
internal readonly record struct TraceKind
{
    private TraceKind(string name) => Name = name;

    /// <summary>The kind as written in the trace.</summary>
    public string Name { get; }

    // Processes, their address spaces and deferred work (Host).

    /// <summary>A system call returned (or a CPU access or process step of the lab's API): <c>call</c>, its arguments, <c>result</c> and, when negative, <c>errno</c>.</summary>
    public static readonly TraceKind Syscall = new("syscall");

    /// <summary>A VMA was created (<c>do_mmap</c>).</summary>
    public static readonly TraceKind Mmap = new("mmap");

    /// <summary>A range was unmapped from a process (<c>do_munmap</c>).</summary>
    public static readonly TraceKind Munmap = new("munmap");

    /// <summary>A process forked (<c>copy_mm</c>, <c>dup_mmap</c>).</summary>
    public static readonly TraceKind Fork = new("fork");

    /// <summary>A process replaced its mm (<c>exec_mmap</c>).</summary>
    public static readonly TraceKind Exec = new("exec");

    /// <summary>A process exited (<c>do_exit</c>, <c>exit_mmap</c>).</summary>
    public static readonly TraceKind Exit = new("exit");

    /// <summary>A page fault was handled (<c>handle_mm_fault</c>, or a PFNMAP VMA's <c>fault</c> op).</summary>
    public static readonly TraceKind Fault = new("fault");

    /// <summary>CPU page-table entries were zapped (<c>zap_page_range</c>, <c>unmap_mapping_range</c>).</summary>
    public static readonly TraceKind Zap = new("zap");

    /// <summary>Pages were pinned (<c>pin_user_pages_remote</c>).</summary>
    public static readonly TraceKind Pin = new("pin");

    /// <summary>Pages were unpinned (<c>unpin_user_pages</c>).</summary>
    public static readonly TraceKind Unpin = new("unpin");

    /// <summary>Work was queued on a workqueue (<c>schedule_work</c>).</summary>
    public static readonly TraceKind WorkQueued = new("work_queued");

    /// <summary>Queued work ran.</summary>
    public static readonly TraceKind WorkRun = new("work_run");

    // The IOMMU layer (drivers/iommu).

    /// <summary>An IOMMU domain was allocated (<c>iommu_domain_alloc</c>).</summary>
    public static readonly TraceKind IommuDomainAlloc = new("iommu_domain_alloc");

    /// <summary>An IOMMU domain was freed (<c>iommu_domain_free</c>).</summary>
    public static readonly TraceKind IommuDomainFree = new("iommu_domain_free");

    /// <summary>An IOMMU group was claimed for user DMA (<c>iommu_group_claim_dma_owner</c>).</summary>
    public static readonly TraceKind IommuGroupClaim = new("iommu_group_claim");

    /// <summary>An IOMMU group's DMA ownership was released (<c>iommu_group_release_dma_owner</c>).</summary>
    public static readonly TraceKind IommuGroupRelease = new("iommu_group_release");

    /// <summary>A group was attached to a domain (<c>iommu_attach_group</c>).</summary>
    public static readonly TraceKind IommuAttachGroup = new("iommu_attach_group");

    /// <summary>A group was detached from a domain (<c>iommu_detach_group</c>).</summary>
    public static readonly TraceKind IommuDetachGroup = new("iommu_detach_group");

    /// <summary>IOPTEs were installed (<c>iommu_map</c>).</summary>
    public static readonly TraceKind IommuMap = new("iommu_map");

    /// <summary><c>iommu_map</c> failed part way and undid what it had mapped.</summary>
    public static readonly TraceKind IommuMapFailed = new("iommu_map_failed");

    /// <summary>IOPTEs were removed and the IOTLB flushed at once (<c>iommu_unmap</c>).</summary>
    public static readonly TraceKind IommuUnmap = new("iommu_unmap");

    /// <summary>IOPTEs were removed with the flush deferred to a gather (<c>iommu_unmap_fast</c>).</summary>
    public static readonly TraceKind IommuUnmapFast = new("iommu_unmap_fast");

    /// <summary>A gathered IOTLB invalidation was flushed (<c>iommu_iotlb_sync</c>).</summary>
    public static readonly TraceKind IommuIotlbSync = new("iommu_iotlb_sync");

    /// <summary>A device DMA went through an IOMMU translation.</summary>
    public static readonly TraceKind Dma = new("dma");

    /// <summary>A device DMA found no translation or the wrong permission (<c>report_iommu_fault</c>).</summary>
    public static readonly TraceKind IommuFault = new("iommu_fault");

    /// <summary>A device DMA reached no memory and completed as an Unsupported Request.</summary>
    public static readonly TraceKind DmaUnsupportedRequest = new("dma_unsupported_request");

    // The VFIO core and the host's devices.

    /// <summary>A container chose its IOMMU backend (<c>VFIO_SET_IOMMU</c>).</summary>
    public static readonly TraceKind VfioSetIommu = new("vfio.set_iommu");

    /// <summary>A container released its backend (<c>__vfio_group_unset_container</c>).</summary>
    public static readonly TraceKind VfioReleaseIommu = new("vfio.release_iommu");

    /// <summary>A device fd was opened (<c>VFIO_GROUP_GET_DEVICE_FD</c>).</summary>
    public static readonly TraceKind VfioDeviceOpen = new("vfio.device_open");

    /// <summary>A device was released by its driver's remove path, closing its fds.</summary>
    public static readonly TraceKind VfioDeviceRelease = new("vfio.device_release");

    /// <summary>A PCI function was hot-unplugged.</summary>
    public static readonly TraceKind HostUnplug = new("host.unplug");

    // The type1 backend (drivers/vfio/vfio_iommu_type1.c).

    /// <summary>A group was attached to the type1 backend (<c>vfio_iommu_type1_attach_group</c>).</summary>
    public static readonly TraceKind AttachGroup = new("attach_group");

    /// <summary>A group was detached from the type1 backend (<c>vfio_iommu_type1_detach_group</c>).</summary>
    public static readonly TraceKind DetachGroup = new("detach_group");

    /// <summary>The type1 backend was released (<c>vfio_iommu_type1_release</c>).</summary>
    public static readonly TraceKind Release = new("release");

    /// <summary>A mapping was made (<c>vfio_dma_do_map</c>).</summary>
    public static readonly TraceKind MapDma = new("map_dma");

    /// <summary>A failed map undid its pins and IOPTEs (<c>vfio_dma_do_map</c>'s unwind).</summary>
    public static readonly TraceKind MapDmaUnwind = new("map_dma_unwind");

    /// <summary>An invalidated mapping got its new vaddr (<c>VFIO_DMA_MAP_FLAG_VADDR</c>).</summary>
    public static readonly TraceKind MapDmaVaddr = new("map_dma_vaddr");

    /// <summary>Mappings were unmapped (<c>vfio_dma_do_unmap</c>).</summary>
    public static readonly TraceKind UnmapDma = new("unmap_dma");

    /// <summary>Mappings' vaddrs were invalidated (<c>VFIO_DMA_UNMAP_FLAG_VADDR</c>).</summary>
    public static readonly TraceKind UnmapDmaVaddr = new("unmap_dma_vaddr");

    /// <summary>A mapping was removed (<c>vfio_remove_dma</c>).</summary>
    public static readonly TraceKind RemoveDma = new("remove_dma");

    /// <summary>A new domain's replay of the mappings failed and was undone (<c>vfio_iommu_replay</c>'s unwind).</summary>
    public static readonly TraceKind ReplayUnwind = new("replay_unwind");

    /// <summary><c>locked_vm</c> was charged (<c>vfio_lock_acct</c>, <c>account_locked_vm</c>).</summary>
    public static readonly TraceKind Charge = new("charge");

    /// <summary><c>locked_vm</c> was un-charged.</summary>
    public static readonly TraceKind Uncharge = new("uncharge");

    /// <summary>A charge was deferred to a workqueue (type1 before 0cfef2b7410b).</summary>
    public static readonly TraceKind LockAcctDeferred = new("lock_acct_deferred");

    /// <summary>A mediated driver pinned pages (<c>vfio_iommu_type1_pin_pages</c>).</summary>
    public static readonly TraceKind PinPages = new("pin_pages");

    /// <summary>A mediated driver unpinned pages (<c>vfio_iommu_type1_unpin_pages</c>).</summary>
    public static readonly TraceKind UnpinPages = new("unpin_pages");

    /// <summary>A mediated driver read or wrote through a mapping (<c>vfio_iommu_type1_dma_rw</c>).</summary>
    public static readonly TraceKind DmaRw = new("dma_rw");

    /// <summary>An unmap asked the pinning drivers to unpin (<c>vfio_notify_dma_unmap</c>).</summary>
    public static readonly TraceKind DmaUnmapNotify = new("dma_unmap_notify");

    /// <summary>An unmap called the IOMMU notifier chain (before v6.0: <c>blocking_notifier_call_chain</c>).</summary>
    public static readonly TraceKind NotifierCallChain = new("notifier_call_chain");

    /// <summary>The kernel would have hit <c>BUG()</c>: an unmap notification retried past its limit.</summary>
    public static readonly TraceKind Bug = new("bug");

    /// <summary>The kernel would have printed a <c>WARN_ON</c>.</summary>
    public static readonly TraceKind Warn = new("warn");

    /// <summary>Dirty tracking started (<c>VFIO_IOMMU_DIRTY_PAGES_FLAG_START</c>).</summary>
    public static readonly TraceKind DirtyStart = new("dirty_start");

    /// <summary>Dirty tracking stopped (<c>VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP</c>).</summary>
    public static readonly TraceKind DirtyStop = new("dirty_stop");

    /// <summary>A PFNMAP mapping took a reference on a device and registered for its release.</summary>
    public static readonly TraceKind DeviceNotifierRegister = new("device_notifier_register");

    /// <summary>A PFNMAP mapping dropped its device reference and release notifier.</summary>
    public static readonly TraceKind DeviceNotifierUnregister = new("device_notifier_unregister");

    /// <summary>A device's release unmapped the mappings of its memory.</summary>
    public static readonly TraceKind DeviceReleaseUnmapped = new("device_release_unmapped");

    // The sPAPR TCE backend (drivers/vfio/vfio_iommu_spapr_tce.c).

    /// <summary>A v1 container was enabled (<c>VFIO_IOMMU_ENABLE</c>).</summary>
    public static readonly TraceKind SpaprEnable = new("spapr.enable");

    /// <summary>A group was attached (<c>tce_iommu_attach_group</c>).</summary>
    public static readonly TraceKind SpaprAttachGroup = new("spapr.attach_group");

    /// <summary>A group was detached (<c>tce_iommu_detach_group</c>).</summary>
    public static readonly TraceKind SpaprDetachGroup = new("spapr.detach_group");

    /// <summary>The container recorded the mm it serves (<c>tce_iommu_mm_set</c>).</summary>
    public static readonly TraceKind SpaprMmSet = new("spapr.mm_set");

    /// <summary>A call came from a process whose mm is not the container's.</summary>
    public static readonly TraceKind SpaprForeignMm = new("spapr.foreign_mm");

    /// <summary>Memory was pre-registered (<c>VFIO_IOMMU_SPAPR_REGISTER_MEMORY</c>, <c>mm_iommu_new</c>).</summary>
    public static readonly TraceKind SpaprRegister = new("spapr.register");

    /// <summary>Pre-registered memory was unregistered (<c>VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY</c>, <c>mm_iommu_put</c>).</summary>
    public static readonly TraceKind SpaprUnregister = new("spapr.unregister");

    /// <summary>A pre-registered region was released (its pages unpinned and un-charged).</summary>
    public static readonly TraceKind SpaprRegionReleased = new("spapr.region_released");

    /// <summary>A DMA window was created (<c>VFIO_IOMMU_SPAPR_TCE_CREATE</c>).</summary>
    public static readonly TraceKind SpaprCreateWindow = new("spapr.create_window");

    /// <summary>A DMA window was removed (<c>VFIO_IOMMU_SPAPR_TCE_REMOVE</c>).</summary>
    public static readonly TraceKind SpaprRemoveWindow = new("spapr.remove_window");

    /// <summary>The default window's deferred creation was cancelled (<c>def_window_pending</c> cleared).</summary>
    public static readonly TraceKind SpaprDefaultWindowCancelled = new("spapr.default_window_cancelled");

    /// <summary>A window's TCEs were cleared (<c>tce_iommu_clear</c>).</summary>
    public static readonly TraceKind SpaprClear = new("spapr.clear");

    /// <summary>A window table's charge was never returned (the kernel's leak on a foreign mm).</summary>
    public static readonly TraceKind SpaprTableChargeLeaked = new("spapr.table_charge_leaked");

    /// <summary>TCEs were set (<c>VFIO_IOMMU_MAP_DMA</c> on sPAPR, <c>tce_iommu_build</c>).</summary>
    public static readonly TraceKind SpaprMap = new("spapr.map");

    /// <summary>TCEs were cleared (<c>VFIO_IOMMU_UNMAP_DMA</c> on sPAPR).</summary>
    public static readonly TraceKind SpaprUnmap = new("spapr.unmap");

    /// <summary>A charge was refused over RLIMIT_MEMLOCK (<c>account_locked_vm</c> returning ENOMEM).</summary>
    public static readonly TraceKind RlimitMemlockExceeded = new("rlimit_memlock_exceeded");

    /// <summary>Every kind, in the order above.</summary>
    public static IReadOnlyList<TraceKind> All { get; } =
    [
        Syscall, Mmap, Munmap, Fork, Exec, Exit, Fault, Zap, Pin, Unpin, WorkQueued, WorkRun,
        IommuDomainAlloc, IommuDomainFree, IommuGroupClaim, IommuGroupRelease, IommuAttachGroup, IommuDetachGroup, IommuMap,
        IommuMapFailed, IommuUnmap, IommuUnmapFast, IommuIotlbSync, Dma, IommuFault, DmaUnsupportedRequest,
        VfioSetIommu, VfioReleaseIommu, VfioDeviceOpen, VfioDeviceRelease, HostUnplug,
        AttachGroup, DetachGroup, Release, MapDma, MapDmaUnwind, MapDmaVaddr, UnmapDma, UnmapDmaVaddr, RemoveDma, ReplayUnwind,
        Charge, Uncharge, LockAcctDeferred, PinPages, UnpinPages, DmaRw, DmaUnmapNotify, NotifierCallChain, Bug, Warn,
        DirtyStart, DirtyStop, DeviceNotifierRegister, DeviceNotifierUnregister, DeviceReleaseUnmapped,
        SpaprEnable, SpaprAttachGroup, SpaprDetachGroup, SpaprMmSet, SpaprForeignMm, SpaprRegister, SpaprUnregister,
        SpaprRegionReleased, SpaprCreateWindow, SpaprRemoveWindow, SpaprDefaultWindowCancelled, SpaprClear,
        SpaprTableChargeLeaked, SpaprMap, SpaprUnmap, RlimitMemlockExceeded,
    ];

    /// <inheritdoc/>
    public override string ToString() => Name;
}
