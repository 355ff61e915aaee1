using VfioLab.Collections;

namespace VfioLab.Iommu;

/// <summary>
/// The value of a run of consecutive valid TCEs in a <see cref="TceTable"/>, keyed by TCE index: each
/// entry's host physical address and direction (the hardware TCE: <c>hpa | TCE_PCI_READ | TCE_PCI_WRITE</c>),
/// the userspace address it was mapped from (the table's userspace view, <c>it_userspace</c>, which the
/// kernel keeps for v2 containers only; the model keeps it for both so checks can name the source) and
/// the address space that address belongs to. Addresses advance by the TCE page size per entry, so
/// neighbours merge only when both the host and the user side continue.
/// </summary>
internal readonly record struct TceEntryRun(ulong Hpa, ulong Ua, int PageShift, IommuProt Prot, int MmId) : IRunValue<TceEntryRun>
{
    /// <inheritdoc />
    public TceEntryRun Advance(ulong offset) => this with { Hpa = Hpa + (offset << PageShift), Ua = Ua + (offset << PageShift) };
}
