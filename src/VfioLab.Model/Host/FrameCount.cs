using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A constant per-frame counter stored over a run of frames (the run-length form of
/// struct page's _refcount or pincount); constant, so neighbouring runs with equal counts merge.</summary>
internal readonly record struct FrameCount(ulong Count) : IRunValue<FrameCount>
{
    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    public FrameCount Advance(ulong offset) => this;

    /// <inheritdoc />
    public static bool TryPack(FrameCount value, out ulong packed)
    {
        packed = value.Count;
        return true;
    }

    /// <inheritdoc />
    public static FrameCount Unpack(ulong packed) => new(packed);
}
