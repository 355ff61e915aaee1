namespace VfioLab.Spapr;

/// <summary>
/// Version switches of the sPAPR TCE backend, fixed when the host is built.
/// </summary>
/// <param name="ContainerRecordsMm">Today (since "vfio/spapr: Reference mm in tce_container", bc82d122ae4a,
/// v4.10): the first user's mm is recorded in the container (<c>tce_iommu_mm_set</c>) and every later call
/// from another mm is EPERM. False under quirk <c>spapr-tce-current-mm</c>: every call pins, looks up
/// pre-registered memory and charges <c>locked_vm</c> in the caller's own mm, so a forked child maps its
/// pages into the parent's table (seed 002's question).</param>
/// <param name="ClearTcesOnDetach">Today (since "vfio/spapr: Always clear TCEs before unsetting the window",
/// 4ba2fdff2eb1, v6.11): <c>tce_iommu_release_ownership</c> clears every TCE of each of the container's tables
/// (<c>tce_iommu_clear</c> over <c>it_offset</c>..<c>it_size</c>) before unsetting the window from the leaving PE, so a
/// group still attached to the same container loses those mappings too. False: before v6.11, the tables and their
/// TCEs stay until the container is released.</param>
internal sealed record SpaprBehavior(bool ContainerRecordsMm = true, bool ClearTcesOnDetach = true);
