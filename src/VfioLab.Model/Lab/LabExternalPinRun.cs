namespace VfioLab.Lab;

/// <summary>
/// Pages of a type1 container's mapping that a device driver pinned through <c>vfio_pin_pages</c> (type1's
/// <c>struct vfio_pfn</c>, the "external" pins of an mdev vendor driver): <see cref="Pages"/> consecutive IOVA pages
/// from <see cref="Iova"/>, backed by consecutive frames from <see cref="Pfn"/>, each pinned
/// <see cref="RefCount"/> times.
/// </summary>
/// <param name="Iova">The IOVA of the first page.</param>
/// <param name="Pages">How many pages the run holds.</param>
/// <param name="Pfn">The page frame number of the first page.</param>
/// <param name="RefCount">How many times each page is pinned (<c>vpfn->ref_count</c>).</param>
public readonly record struct LabExternalPinRun(ulong Iova, ulong Pages, ulong Pfn, uint RefCount);
