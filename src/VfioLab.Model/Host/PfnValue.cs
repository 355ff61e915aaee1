using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A pfn stored over a run of object pages (a page-cache index to page mapping, xarray
/// entries); linear, so offset <c>i</c> maps <c>Pfn + i</c>.</summary>
internal readonly record struct PfnValue(Pfn Pfn) : IRunValue<PfnValue>
{
    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    public PfnValue Advance(ulong offset) => new(Pfn.Plus(offset));

    /// <inheritdoc />
    public static bool TryPack(PfnValue value, out ulong packed)
    {
        packed = value.Pfn.Value;
        return true;
    }

    /// <inheritdoc />
    public static PfnValue Unpack(ulong packed) => new(new Pfn(packed));
}
