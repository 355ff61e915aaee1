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

    /// <summary>The values in words (<c>[0xfee00000, 0xfeffffff] overlaps the msi reserved region ...</c>).</summary>
    public string Reason => string.Format(CultureInfo.InvariantCulture, Format, A, B, C, D, Text);

    /// <inheritdoc/>
    public override string ToString() => $"{Errno}: {Reason} ({Check}{(Source is null ? string.Empty : "; " + Source)})";
}
