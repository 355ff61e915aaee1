using System.Globalization;
using VfioLab.Abi;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// One field of what a step returned, as the runner reports it: an unsigned or signed integer, a
/// bool, a string (an errno name, a word), bytes (compared as hex, ignoring spaces and case), a
/// list, or a nested map. A flags field is an unsigned integer that also knows its flag names, so an
/// <c>expect:</c> can name the flags as a list.
/// </summary>
internal sealed class ResultValue
{
    private ResultValue(ResultValueKind kind, ulong unsigned, long signed, string text, IReadOnlyList<ResultValue> items,
        IReadOnlyDictionary<string, ResultValue> fields, Func<string, ulong?>? parseFlag = null)
    {
        ParseFlag = parseFlag;
        Kind = kind;
        Unsigned = unsigned;
        Signed = signed;
        Text = text;
        Items = items;
        Fields = fields;
    }

    public ResultValueKind Kind { get; }

    public ulong Unsigned { get; }

    public long Signed { get; }

    /// <summary>A string's text, or bytes as lower-case hex without spaces; "true"/"false" for a bool.</summary>
    public string Text { get; }

    public bool Bool => Kind == ResultValueKind.Bool && Unsigned != 0;

    public IReadOnlyList<ResultValue> Items { get; }

    public IReadOnlyDictionary<string, ResultValue> Fields { get; }

    /// <summary>For a flags field: a flag's short name (<c>PGSIZES</c>) to its bits, null for a name the struct does not
    /// define; null for any other field.</summary>
    public Func<string, ulong?>? ParseFlag { get; }

    public static ResultValue FromUInt64(ulong value) => new(ResultValueKind.Unsigned, value, 0, "", [], Empty);

    /// <summary>A flags field: its bits, compared as a number or with a list of the C short names of <typeparamref name="TEnum"/>.</summary>
    public static ResultValue FromFlags<TEnum>(TEnum value)
        where TEnum : struct, Enum =>
        new(ResultValueKind.Unsigned, Convert.ToUInt64(value, CultureInfo.InvariantCulture), 0, "", [], Empty,
            name => AbiNames.TryParse(name.Trim(), out TEnum one) ? Convert.ToUInt64(one, CultureInfo.InvariantCulture) : null);

    public static ResultValue FromInt64(long value) => new(ResultValueKind.Signed, 0, value, "", [], Empty);

    public static ResultValue FromBool(bool value) => new(ResultValueKind.Bool, value ? 1UL : 0UL, 0, value ? "true" : "false", [], Empty);

    public static ResultValue FromString(string value) => new(ResultValueKind.String, 0, 0, value, [], Empty);

    public static ResultValue FromBytes(ReadOnlySpan<byte> bytes) =>
        new(ResultValueKind.Bytes, 0, 0, Convert.ToHexStringLower(bytes), [], Empty);

    /// <summary>Bytes given as hex text (<c>"de ad be ef"</c>).</summary>
    public static ResultValue FromHex(string hex) => new(ResultValueKind.Bytes, 0, 0, ScalarSyntax.NormalizeHex(hex), [], Empty);

    public static ResultValue FromList(IEnumerable<ResultValue> items) => new(ResultValueKind.List, 0, 0, "", [.. items], Empty);

    public static ResultValue FromMap(IReadOnlyDictionary<string, ResultValue> fields) =>
        new(ResultValueKind.Map, 0, 0, "", [], new Dictionary<string, ResultValue>(fields, StringComparer.Ordinal));

    public override string ToString() => Kind switch
    {
        ResultValueKind.Unsigned => "0x" + Unsigned.ToString("x", CultureInfo.InvariantCulture),
        ResultValueKind.Signed => Signed.ToString(CultureInfo.InvariantCulture),
        ResultValueKind.Bytes => $"\"{Text}\"",
        ResultValueKind.List => "[" + string.Join(", ", Items) + "]",
        ResultValueKind.Map => "{ " + string.Join(", ", Fields.Select(p => $"{p.Key}: {p.Value}")) + " }",
        _ => Text,
    };

    private static IReadOnlyDictionary<string, ResultValue> Empty { get; } = new Dictionary<string, ResultValue>();
}
