using System.Globalization;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// One field of what a step returned, as the runner reports it: an unsigned or signed integer, a
/// bool, a string (an errno name, a word), bytes (compared as hex, ignoring spaces and case), a
/// list, or a nested map.
/// </summary>
internal sealed class ResultValue
{
    private ResultValue(ResultValueKind kind, ulong unsigned, long signed, string text, IReadOnlyList<ResultValue> items,
        IReadOnlyDictionary<string, ResultValue> fields)
    {
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

    public static ResultValue FromUInt64(ulong value) => new(ResultValueKind.Unsigned, value, 0, "", [], Empty);

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
