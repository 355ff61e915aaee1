using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Type1;

/// <summary>An external pin of one PAGE_SIZE page by a mediated device's vendor driver (struct vfio_pfn):
/// the page's IOVA, its pfn, and how many times it was pinned. It holds exactly one page pin however
/// large <see cref="RefCount"/> is.</summary>
internal readonly record struct VfioPfn(Iova Iova, Pfn Pfn, uint RefCount);

/// <summary>External pins of consecutive pages with consecutive pfns and one reference count: how a
/// mapping stores its <c>pfn_list</c> (the kernel's one rb-tree node per page, folded into runs).</summary>
/// <param name="Iova">IOVA of the first page.</param>
/// <param name="Pages">Number of pages.</param>
/// <param name="Pfn">The first page's pfn; page <c>i</c> has <c>Pfn + i</c>.</param>
/// <param name="RefCount">Pins of each page.</param>
internal readonly record struct VpfnRun(ulong Iova, ulong Pages, Pfn Pfn, uint RefCount);

/// <summary>The value of a run of external pins keyed by IOVA page number: linear in the pfn, constant
/// in the reference count.</summary>
internal readonly record struct VpfnValue(Pfn Pfn, uint RefCount) : IRunValue<VpfnValue>
{
    /// <inheritdoc />
    public VpfnValue Advance(ulong offset) => new(Pfn.Plus(offset), RefCount);
}
