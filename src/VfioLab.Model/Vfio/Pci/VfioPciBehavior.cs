namespace VfioLab.Vfio.Pci;

/// <summary>
/// The switches of vfio-pci that differ between kernel versions. Built by the simulation from the
/// kernel profile and its quirks; never changes.
/// </summary>
/// <param name="ZapRangePgoffMismatch">The first version of the 2021 device-memory RFC (seed 003, patch
/// 04/10, 22 Feb 2021): a BAR mmap keeps the BAR's physical pfn in <c>vm_pgoff</c> (as vfio-pci did until
/// v6.10) while the zap is <c>unmap_mapping_range</c> over the region-offset range
/// <c>VFIO_PCI_INDEX_TO_OFFSET(BAR0 .. ROM)</c>. The two numbering spaces differ, so a zap reaches only
/// the VMAs whose physical pfns happen to fall in the region-offset range (Jason Gunthorpe's review,
/// 25 Feb 2021; fixed upstream by aac6db75a9fc, v6.10, which keeps the region-offset encoding). Quirk
/// <c>zap-range-pgoff-mismatch</c>.</param>
/// <param name="UnalignedInfoCaps">Profile <c>linux-6.1</c>: VFIO_DEVICE_GET_INFO before a881b496941f "vfio: align
/// capability structures" (Stefan Hajnoczi, v6.6), when <c>struct vfio_device_info</c> had no <c>pad</c>: the struct
/// copied back is 16 bytes when argsz is below 20, else 20, instead of min(argsz, 24).</param>
internal sealed record VfioPciBehavior(bool ZapRangePgoffMismatch = false, bool UnalignedInfoCaps = false)
{
    /// <summary>Upstream v6.10+ (and the seeds design): <c>vm_pgoff</c> in region-offset space.</summary>
    public static VfioPciBehavior Default { get; } = new();
}
