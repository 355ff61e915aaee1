using VfioLab.Collections;

namespace VfioLab.Spapr;

/// <summary>A run of a pre-registered region's <c>hpas[]</c>: consecutive system pages of the region backed by
/// consecutive host frames from <see cref="Pfn"/>; keyed by page index within the region.</summary>
internal readonly record struct HpaRun(ulong Pfn) : IRunValue<HpaRun>
{
    /// <inheritdoc />
    public HpaRun Advance(ulong offset) => new(Pfn + offset);
}
