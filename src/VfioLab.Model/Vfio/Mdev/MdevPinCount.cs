using VfioLab.Collections;

namespace VfioLab.Vfio.Mdev;

/// <summary>How many times a vendor driver pinned each page of a run of IOVA (its own record, as GVT-g
/// keeps one per guest page); constant over the run, so equal neighbours merge.</summary>
internal readonly record struct MdevPinCount(uint Count) : IRunValue<MdevPinCount>
{
    /// <inheritdoc />
    public MdevPinCount Advance(ulong offset) => this;
}
