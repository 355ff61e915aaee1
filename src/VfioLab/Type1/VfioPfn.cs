using VfioLab.Addressing;

namespace VfioLab.Type1;

/// <summary>An external pin of one PAGE_SIZE page by a mediated device's vendor driver (struct vfio_pfn):
/// the page's IOVA, its pfn, and how many times it was pinned. It holds exactly one page pin however
/// large <see cref="RefCount"/> is.</summary>
internal readonly record struct VfioPfn(ulong Iova, Pfn Pfn, uint RefCount);
