namespace VfioLab.Addressing;

/// <summary>
/// An inclusive byte range <c>[Start, Last]</c> of one address space, the interval vocabulary of the
/// whole model (STYLE.md 7): <c>Last</c> rather than an exclusive end, because a range may end at
/// 2^64-1. Sizes are never computed as <c>Last + 1 - Start</c> for the full space; see <see cref="TrySize"/>.
/// </summary>
internal readonly record struct ByteRange(ulong Start, ulong Last)
{
    /// <summary>The range of <paramref name="size"/> bytes at <paramref name="start"/>; false when
    /// size is 0 or the last byte would pass 2^64-1.</summary>
    public static bool TryFromStartSize(ulong start, ulong size, out ByteRange range)
    {
        range = default;
        if (size == 0 || start + (size - 1) < start)
        {
            return false;
        }
        range = new ByteRange(start, start + (size - 1));
        return true;
    }

    /// <summary>The range of <paramref name="size"/> bytes at <paramref name="start"/>; the caller has proved that
    /// size is not 0 and that the last byte does not pass 2^64-1 (<see cref="TryFromStartSize"/> checks).</summary>
    public static ByteRange FromStartSize(ulong start, ulong size)
    {
        System.Diagnostics.Debug.Assert(size != 0 && start + (size - 1) >= start, "an empty or wrapping range");
        return new ByteRange(start, start + (size - 1));
    }

    /// <summary>The size in bytes; the caller has proved the range is not the whole 64-bit space (no range built from
    /// a u64 size is). <see cref="TrySize"/> checks.</summary>
    public ulong Size
    {
        get
        {
            System.Diagnostics.Debug.Assert(!(Start == 0 && Last == ulong.MaxValue), "the whole 64-bit space has no u64 size");
            return Last - Start + 1;
        }
    }

    /// <summary>Whether <paramref name="next"/> starts at the byte after this range's last (never when this range
    /// ends at 2^64-1).</summary>
    public bool IsFollowedBy(ByteRange next) => Last != ulong.MaxValue && Last + 1 == next.Start;

    /// <summary>The size in bytes, unless the range is the whole 64-bit space.</summary>
    public bool TrySize(out ulong size)
    {
        size = Last - Start + 1;
        return !(Start == 0 && Last == ulong.MaxValue);
    }

    /// <summary>Whether the ranges share a byte.</summary>
    public bool Overlaps(ByteRange other) => Start <= other.Last && other.Start <= Last;

    /// <summary>Whether <paramref name="other"/> lies entirely inside this range.</summary>
    public bool Contains(ByteRange other) => other.Start >= Start && other.Last <= Last;

    /// <summary>Whether the byte lies inside this range.</summary>
    public bool Contains(ulong address) => address >= Start && address <= Last;

    /// <inheritdoc />
    public override string ToString() => $"[0x{Start:x}, 0x{Last:x}]";
}
