using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A valueless marker for set-like run maps (free frames, reserved frames, written chunks),
/// the run-length form of a page flag bit (PG_reserved, PG_dirty).</summary>
internal readonly record struct Presence : IRunValue<Presence>
{
    /// <inheritdoc />
    public Presence Advance(ulong offset) => this;
}
