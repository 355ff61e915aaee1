using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>What a PFNMAP page-table walk finds at one address (follow_pfnmap_start's args).</summary>
/// <param name="Pfn">The pfn mapped at the address.</param>
/// <param name="Writable">Whether the entry allows writes.</param>
/// <param name="BlockPages">Pages from the address to the end of its page-table-level block: more than 1
/// only inside a naturally aligned PMD/PUD mapping of a huge-PFNMAP VMA (v6.15+ type1 uses it).</param>
/// <param name="ReservedOrInvalid">True when the pfn has no struct page or is PageReserved (type1 may map it);
/// false for an ordinary refcounted page (type1 refuses it with EFAULT).</param>
internal readonly record struct PfnmapEntry(Pfn Pfn, bool Writable, ulong BlockPages, bool ReservedOrInvalid);
