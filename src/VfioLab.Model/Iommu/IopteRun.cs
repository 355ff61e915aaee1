using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Iommu;

/// <summary>
/// The value of a page-table run in an <see cref="IommuDomain"/>: consecutive leaf IOPTEs of one
/// size and protection mapping physically contiguous memory (a stretch of the driver's page table,
/// e.g. a run of VT-d <c>dma_pte</c> or LPAE block descriptors). Keyed by IOVA byte; the physical
/// address advances with the key, so neighbours merge only when contiguous with the same size and prot.
/// </summary>
internal readonly record struct IopteRun(PhysAddr Phys, ulong PageSize, IommuProt Prot) : IRunValue<IopteRun>
{
    /// <inheritdoc />
    public IopteRun Advance(ulong offset) => this with { Phys = new PhysAddr(Phys.Value + offset) };
}
