using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;

namespace VfioLab.Vfio;

// The VFIO core's entry points for drivers that pin guest pages (vfio_pin_pages, vfio_unpin_pages and
// vfio_dma_rw in drivers/vfio/vfio_main.c, with the container path of drivers/vfio/container.c): the
// core's checks, then the container's backend.
internal sealed partial class VfioDevice
{
    /// <summary>VFIO_PIN_PAGES_MAX_ENTRIES: one page of pointers, PAGE_SIZE / 8 (512 on a 4 KiB host).</summary>
    public ulong PinPagesMaxEntries(int pageShift) => (1UL << pageShift) / 8;

    /// <summary>
    /// vfio_pin_pages: EINVAL (no <paramref name="pages"/> array, <paramref name="npage"/> 0, the device not
    /// open, the driver without <c>dma_unmap</c>), E2BIG (more than <see cref="PinPagesMaxEntries"/>), ENOTTY
    /// (a backend without pin_pages), then the backend's errno (type1: EINVAL, EACCES, EBUSY, EPERM, ENODEV,
    /// EFAULT, ENOMEM, EOVERFLOW). Returns <paramref name="npage"/> on success; all or nothing.
    /// </summary>
    /// <remarks>Model guard: an IOVA that is not PAGE_SIZE aligned is EINVAL. Linux does not check it (every
    /// in-tree caller passes <c>gfn &lt;&lt; PAGE_SHIFT</c>); type1 would key the external pin at the
    /// unaligned IOVA and, for one straddling a mapping's first page, pin a page outside the mapping and
    /// index its dirty bitmap out of bounds.</remarks>
    public long PinPages(ulong iova, int npage, IommuProt prot, Pfn[]? pages, int pageShift)
    {
        if (pages is null || npage == 0 || OpenCount == 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pin_pages", OpenCount == 0
                ? "{4} is not open"
                : "npage is 0 or no pages array was given", text: Name);
        }
        if (Driver is not IVfioPinningDriver)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pin_pages", "the driver of {4} has no dma_unmap callback, so it may not pin", text: Name);
        }
        if (npage > 0 && (ulong)npage > PinPagesMaxEntries(pageShift))
        {
            return Refusals.RefuseReturn(Errno.E2BIG, "vfio_pin_pages", "npage {0} is over VFIO_PIN_PAGES_MAX_ENTRIES {1}", (ulong)npage, PinPagesMaxEntries(pageShift));
        }
        if (Group.Container?.Iommu is not IVfioIommuPinning backend)
        {
            return Refusals.RefuseReturn(Errno.ENOTTY, "vfio_pin_pages", "the container of {4} has no IOMMU driver that pins pages", text: Name);
        }
        if ((iova & ((1UL << pageShift) - 1)) != 0 || (npage > 0 && pages.Length < npage))
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pin_pages", "iova 0x{0:x} is not page-aligned, or the pages array holds fewer than {1} (a model guard)",
                iova, (ulong)npage);
        }
        return backend.PinPages(this, iova, npage, prot, pages);
    }

    /// <summary>vfio_unpin_pages: void in the kernel. False where the kernel WARNs and does nothing (the
    /// device not open, no <c>dma_unmap</c>, <paramref name="npage"/> not in 1..<see cref="PinPagesMaxEntries"/>,
    /// an unaligned IOVA — the model's guard, as for <see cref="PinPages"/>) or where the backend warns.</summary>
    public bool UnpinPages(ulong iova, int npage, int pageShift) => UnpinPages(iova, npage, pageShift, out _);

    /// <summary>vfio_unpin_pages, telling the caller how many pages from <paramref name="iova"/> the backend walked
    /// (each inside a mapping, its external pin dropped if it had one): all of them, fewer when it stopped at a
    /// gap, 0 when the call was refused. A driver keeping its own record of pins adjusts exactly those.</summary>
    public bool UnpinPages(ulong iova, int npage, int pageShift, out int walked)
    {
        walked = 0;
        if (OpenCount == 0 || Driver is not IVfioPinningDriver)
        {
            return false;
        }
        if (npage <= 0 || (ulong)npage > PinPagesMaxEntries(pageShift) || (iova & ((1UL << pageShift) - 1)) != 0)
        {
            return false;
        }
        return Group.Container?.Iommu is IVfioIommuPinning backend && backend.UnpinPages(iova, npage, out walked);
    }

    /// <summary>vfio_dma_rw: EINVAL (no data, the device not open), ENOTTY (a backend without dma_rw), then the
    /// backend's errno (type1: EBUSY, EINVAL, EPERM, EFAULT). <paramref name="current"/> is the calling user
    /// thread's process, or null when a kernel thread (a vendor driver's worker) calls.</summary>
    public Errno DmaRw(ulong iova, Span<byte> data, bool write, Host.Process? current)
    {
        if (data.IsEmpty || OpenCount == 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_dma_rw", OpenCount == 0 ? "{4} is not open" : "the length is 0", text: Name);
        }
        if (Group.Container?.Iommu is not IVfioIommuPinning backend)
        {
            return Refusals.Refuse(Errno.ENOTTY, "vfio_dma_rw", "the container of {4} has no IOMMU driver that reads guest memory", text: Name);
        }
        return backend.DmaRw(iova, data, write, current);
    }
}
