namespace VfioLab.Type1;

/// <summary>
/// The switches of the type1 backend that differ between kernel versions, plus its module
/// parameters (drivers/vfio/vfio_iommu_type1.c <c>dma_entry_limit</c>, <c>disable_hugepages</c>,
/// <c>allow_unsafe_interrupts</c>). Built by the simulation from the kernel profile; never changes.
/// </summary>
/// <param name="DmaEntryLimit">Module parameter <c>dma_entry_limit</c> (default U16_MAX, added in v5.1 by
/// 492855939bdb "vfio/type1: Limit DMA mappings per container", CVE-2019-3882), read when a container opens.</param>
/// <param name="DisableHugepages">Module parameter <c>disable_hugepages</c>: every pinning step is one page.</param>
/// <param name="AllowUnsafeInterrupts">Module parameter <c>allow_unsafe_interrupts</c>: attach groups
/// without isolated MSI.</param>
/// <param name="OverflowIsEoverflow">v6.18: size 0 refused first and range overflow answered EOVERFLOW,
/// with inclusive ends so a mapping may end at 2^64-1 (6012379ede6a, ef270ec44637, Alex Mastro, merged
/// 31 Oct 2025). Both shipped profiles have it; false replays v6.17 (EINVAL). For external pinning it also
/// refuses npage &lt;= 0 (EINVAL) and an IOVA range that wraps (EOVERFLOW) before the lock; v6.17 pinned nothing
/// and returned 0 for a negative count.</param>
/// <param name="UnmapNotifierChain">v4.10-v5.19: mediated-device drivers register a blocking notifier for
/// VFIO_IOMMU_NOTIFY_DMA_UNMAP themselves when opened (a54eb55045ae, Nov 2016), instead of the core
/// registering every opened device that has <c>ops-&gt;dma_unmap</c> (ce4b4657ff18 "vfio: Replace the DMA
/// unmapping notifier with a callback" and 8cfc5b60751b "vfio: Replace the iommu notifier with a device list",
/// Jason Gunthorpe, v6.0). The unmap protocol (whole mapping, lock dropped, restart, BUG after 10 retries) is the
/// same; only who registers, and when, differs.</param>
/// <param name="DeviceMemoryNotifier">The 2021 device-memory design (seed 003: RFC "vfio: Device memory DMA
/// mapping improvements", Alex Williamson, 22 Feb 2021, never merged), profile <c>seeds</c>: a VM_PFNMAP
/// address that is a vfio device's mmap is translated by the device's driver (no page-table walk), and the
/// mapping takes a device reference and a release notifier that removes it when the device is released.
/// False is upstream (<c>linux-6.18</c>): the page-table walk of spec §3.2 with no reference or notifier.</param>
/// <param name="StrictMmioMaps">Module parameter <c>strict_mmio_maps</c> of the same RFC (default on), only
/// with <paramref name="DeviceMemoryNotifier"/>: a PFNMAP that is not a vfio device's mmap is refused
/// (ENODEV, the error of vfio_device_get_from_vma); off, it is walked as upstream does, untracked.</param>
/// <param name="PfnmapVmPgoffTranslation">Quirk <c>pfnmap-vm-pgoff-translation</c>: a PFNMAP pfn is computed as
/// <c>vm_pgoff</c> plus the page offset, accepted only when it is reserved or has no struct page (type1
/// before 5cbf3264bc71, "vfio/type1: Fix VA->PA translation for PFNMAP VMAs in vaddr_get_pfn()", Sean
/// Christopherson, v5.7, April 2020; seed 001). Right only for VMAs that follow the remap_pfn_range
/// convention.</param>
/// <param name="UnmapOwnerCheck">Quirk <c>unmap-owner-check</c>, v4.10-v5.19: the UNMAP walk stops, silently and with
/// success, at the first mapping whose owner task's current mm is not the caller's mm, reporting only what was
/// removed (or invalidated) before it. Added by 8f0d5bb95f76 "vfio iommu type1: Add task structure to vfio_dma"
/// (Kirti Wankhede, Nov 2016, v4.10); removed by ffed0518d871 "vfio: remove useless judgement" (Li Zhe, June 2022,
/// merged for v6.0) because it blocked QEMU's live upgrade by fork and exec.</param>
/// <param name="ExecLockedVmUnderflow">Quirk <c>exec-locked-vm-underflow</c>, before v6.3: <c>vfio_lock_acct</c>
/// charges and un-charges the owner task's current mm (<c>dma-&gt;task-&gt;mm</c>; ESRCH when the task has none)
/// instead of the mm saved at MAP. After the owner execs, its new mm (locked_vm 0) takes the un-charges of the
/// old mappings and wraps below zero, and later MAPs fail ENOMEM. Fixed by 046eca5018f8 "vfio/type1: prevent
/// underflow of locked_vm via exec()" (Steve Sistare, v6.3-rc1, Feb 2023; stable 6.1.16).</param>
/// <param name="AsyncLockAccounting">Quirk <c>async-lock-accounting</c> (seed 004), before 0cfef2b7410b
/// "vfio/type1: Remove locked page accounting workqueue" (Alex Williamson, April 2017, v4.12, Cc stable):
/// <c>vfio_lock_acct</c> could not fail and did not check the limit; it tried the mmap lock and, when another thread
/// held it, queued the <c>locked_vm</c> update on the system workqueue (<c>vfio_lock_acct_bg</c>, run at
/// <c>run_deferred_work</c>). MAP's only limit check reads the stale counter, so users can race the worker past
/// RLIMIT_MEMLOCK, or be refused for un-charges not yet applied.</param>
/// <param name="SubpageIommuPages">Quirk <c>subpage-iommu-pages</c> (seed 000): the RFC "vfio/type1: handle case where
/// IOMMU does not support PAGE_SIZE size" (Eric Auger, 28 Oct 2015; Alex Williamson's review the same day), never merged
/// as posted. <c>pgsize_bitmap</c> starts from all ones instead of PAGE_MASK and is not folded, so GET_INFO advertises
/// the IOMMU's sizes below PAGE_SIZE (4 KiB on a 64 KiB-page host behind a 4 KiB SMMU; every size, down to 1 byte,
/// with no domain), while MAP and UNMAP keep PAGE_SIZE alignment whenever the smallest advertised size is below it.
/// Dirty tracking (v5.8, 2020) did not exist then; the model keeps its granularity at that enforced size, since its
/// bitmaps track pinned PAGE_SIZE pages, and only the migration capability echoes the advertised minimum.</param>
/// <param name="NestingIommuExtension">Profiles <c>linux-6.1</c> and <c>linux-6.12</c>: CHECK_EXTENSION answers 1 for
/// <c>VFIO_TYPE1_NESTING_IOMMU</c>, as every kernel did from f5c9ecebaf2a (v4.5) until 35890f85573c "vfio: Remove
/// VFIO_TYPE1_NESTING_IOMMU" (Jason Gunthorpe, v6.13), which stopped advertising it (0). SET_IOMMU with that type still
/// fails on the IOMMUs modelled here: the old attach called <c>iommu_enable_nesting</c>, EINVAL without an ARM SMMU's
/// <c>enable_nesting</c> op, and the model's open refuses the type with the same EINVAL.</param>
/// <param name="UnalignedInfoCaps">Profile <c>linux-6.1</c>: GET_INFO before a881b496941f "vfio: align capability
/// structures" (Stefan Hajnoczi, v6.6). Capabilities are not padded to 8 bytes (DMA_AVAIL takes 12 bytes, so the
/// whole answer with an IOVA_RANGE of two windows is 116 bytes instead of 120), and the struct copied back is
/// 16 bytes when argsz is below 20, else 20 (<c>offsetofend(cap_offset)</c>), instead of min(argsz, 24).</param>
/// <remarks>The <c>VFIO_UPDATE_VADDR</c> answer and the EBUSY-on-invalid-vaddr rules are those of v6.3+ in every
/// profile (ef3a3f6a294b, 046eca5018f8 and the rest of that series reached the 6.1 LTS in 6.1.16, March 2023).</remarks>
internal sealed record Type1Behavior(
    uint DmaEntryLimit = 65535,
    bool DisableHugepages = false,
    bool AllowUnsafeInterrupts = false,
    bool OverflowIsEoverflow = true,
    bool UnmapNotifierChain = false,
    bool DeviceMemoryNotifier = false,
    bool StrictMmioMaps = true,
    bool PfnmapVmPgoffTranslation = false,
    bool UnmapOwnerCheck = false,
    bool ExecLockedVmUnderflow = false,
    bool AsyncLockAccounting = false,
    bool SubpageIommuPages = false,
    bool NestingIommuExtension = false,
    bool UnalignedInfoCaps = false)
{
    /// <summary>Upstream v6.18 with default module parameters.</summary>
    public static Type1Behavior Default { get; } = new();
}
