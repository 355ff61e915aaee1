using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A constant per-frame counter stored over a run of frames (the run-length form of
/// struct page's _refcount or pincount); constant, so neighbouring runs with equal counts merge.</summary>
internal readonly record struct FrameCount(ulong Count) : IRunValue<FrameCount>
{
    /// <inheritdoc />
    public FrameCount Advance(ulong offset) => this;
}
