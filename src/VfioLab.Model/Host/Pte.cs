using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A present page-table entry stored over a run of virtual pages (pte_t: pfn and the write
/// bit); linear, so the page <c>i</c> pages later maps pfn <c>Pfn + i</c>.</summary>
internal readonly record struct Pte(Pfn Pfn, bool Writable) : IRunValue<Pte>
{
    /// <inheritdoc />
    public Pte Advance(ulong offset) => new(Pfn.Plus(offset), Writable);
}
