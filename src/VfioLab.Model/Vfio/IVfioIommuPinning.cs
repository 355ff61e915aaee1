using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Vfio;

/// <summary>
/// The kernel-internal half of an IOMMU backend that mediated devices use (the <c>pin_pages</c>,
/// <c>unpin_pages</c>, <c>dma_rw</c> and, before v6.0, <c>register_notifier</c> members of struct
/// vfio_iommu_driver_ops). Only the VFIO core calls it, through <see cref="VfioDevice.PinPages"/>,
/// <see cref="VfioDevice.UnpinPages(ulong, int, int)"/> and <see cref="VfioDevice.DmaRw"/>, which make the core's own checks
/// first. A backend without it (sPAPR) makes those calls answer ENOTTY.
/// </summary>
internal interface IVfioIommuPinning
{
    /// <summary>Whether devices register for unmap notifications themselves through a notifier chain
    /// (v4.10-v5.19) instead of being registered by the core when opened (v6.0+).</summary>
    bool UsesNotifierChain { get; }

    /// <summary>pin_pages: pins <paramref name="npage"/> PAGE_SIZE pages from <paramref name="iova"/> for
    /// <paramref name="device"/>, writing their pfns to <paramref name="pages"/>. Returns
    /// <paramref name="npage"/> or -errno; all or nothing.</summary>
    long PinPages(VfioDevice device, ulong iova, int npage, IommuProt prot, Pfn[] pages);

    /// <summary>unpin_pages: drops one external pin of each page. Void in the kernel; false when the
    /// kernel would WARN (misuse: not v2, a gap before the last page). <paramref name="walked"/> gets the pages
    /// from <paramref name="iova"/> that were walked (each inside a mapping, its pin dropped if it had one):
    /// <paramref name="npage"/>, fewer when the walk stopped at a gap, 0 on misuse.</summary>
    bool UnpinPages(ulong iova, int npage, out int walked);

    /// <summary>dma_rw: copies between <paramref name="data"/> and the user memory behind
    /// <c>[iova, iova + data.Length)</c>, crossing mappings; <paramref name="current"/> is the calling user
    /// thread's process, or null for a kernel thread. 0 or -errno.</summary>
    Errno DmaRw(ulong iova, Span<byte> data, bool write, Host.Process? current);

    /// <summary>register_notifier (v4.10-v5.19): <paramref name="device"/> asks for the events in
    /// <paramref name="events"/>; EINVAL for any but <c>VFIO_IOMMU_NOTIFY_DMA_UNMAP</c>.</summary>
    Errno RegisterNotifier(VfioDevice device, ulong events);

    /// <summary>unregister_notifier (v4.10-v5.19).</summary>
    void UnregisterNotifier(VfioDevice device);
}
