using System.Globalization;
using VfioLab.Abi;

namespace VfioLab.Diagnostics;

/// <summary>
/// Why one kernel check refused a call: the errno it returned, the check (its function as Linux names it), the
/// profile switch, quirk or commit the refusal depends on (when it does), and the values involved. The values are kept
/// as numbers with a composite format (<c>{0}</c>..<c>{3}</c> the numbers, <c>{4}</c> the text), so recording a refusal
/// allocates nothing and <see cref="Reason"/> is formatted only when someone reads it.
/// </summary>
/// <param name="Errno">The errno the check returned; <see cref="Errno.None"/> for no refusal.</param>
/// <param name="Check">The kernel function that refused (<c>vfio_dma_do_map</c>).</param>
/// <param name="Source">The profile switch, quirk or commit behind the refusal, or null when every kernel refuses so.</param>
/// <param name="Format">The reason's composite format over <paramref name="A"/>..<paramref name="D"/> and <paramref name="Text"/>.</param>
/// <param name="A">The first value.</param>
/// <param name="B">The second value.</param>
/// <param name="C">The third value.</param>
/// <param name="D">The fourth value.</param>
/// <param name="Text">A name among the values (a region type, a device), or null.</param>
internal readonly record struct Refusal(Errno Errno, string Check, string? Source, string Format, ulong A, ulong B, ulong C, ulong D, string? Text)
{
    /// <summary>Whether this records a refusal at all.</summary>
    public bool IsSet => Errno != Errno.None;

    /// <summary>Clears <paramref name="slot"/> if it records a refusal (a call that succeeded), testing its errno where it
    /// lies: read through a property the 72-byte record was copied out to test one field, twice per system call (the
    /// host's slot and the process's), ~1 % of issue 16's 4 KiB pair profile (docs/benchmarks.md, 2026-12-07 pair6).</summary>
    public static void Forget(ref Refusal slot)
    {
        if (slot.Errno != Errno.None)
        {
            slot = default;
        }
    }

    /// <summary>The values in words (<c>[0xfee00000, 0xfeffffff] overlaps the msi reserved region ...</c>).</summary>
    public string Reason => string.Format(CultureInfo.InvariantCulture, Format, A, B, C, D, Text);

    /// <inheritdoc/>
    public override string ToString() => $"{Errno}: {Reason} ({Check}{(Source is null ? string.Empty : "; " + Source)})";
}
