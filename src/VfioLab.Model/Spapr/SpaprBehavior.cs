namespace VfioLab.Spapr;

/// <summary>
/// Version switches of the sPAPR TCE backend, fixed when the host is built.
/// </summary>
/// <param name="ContainerRecordsMm">Today (since "vfio/spapr: Reference mm in tce_container", bc82d122ae4a,
/// v4.10): the first user's mm is recorded in the container (<c>tce_iommu_mm_set</c>) and every later call
/// from another mm is EPERM. False under quirk <c>spapr-tce-current-mm</c>: every call pins, looks up
/// pre-registered memory and charges <c>locked_vm</c> in the caller's own mm, so a forked child maps its
/// pages into the parent's table (seed 002's question).</param>
internal sealed record SpaprBehavior(bool ContainerRecordsMm = true);
