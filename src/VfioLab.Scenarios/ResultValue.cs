using System.Globalization;
using System.Text.Json;
using VfioLab.Abi;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Running;

namespace VfioLab.Scenarios;

/// <summary>
/// One field of what a step returned (<see cref="StepResult"/>): an unsigned or signed integer, a boolean, text (an
/// errno name, a word), bytes (compared as hex, ignoring spaces and case), a list, or a nested map. Only the
/// members of its <see cref="Kind"/> carry a value; the others are 0 or empty.
/// </summary>
public sealed class ResultValue
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

    /// <summary>Which member holds the value.</summary>
    public ResultValueKind Kind { get; }

    /// <summary>An <see cref="ResultValueKind.Unsigned"/> value.</summary>
    public ulong Unsigned { get; }

    /// <summary>A <see cref="ResultValueKind.Signed"/> value.</summary>
    public long Signed { get; }

    /// <summary>A string's text, or bytes as lower-case hex without spaces; "true"/"false" for a bool.</summary>
    public string Text { get; }

    /// <summary>A <see cref="ResultValueKind.Bool"/> value.</summary>
    public bool Bool => Kind == ResultValueKind.Bool && Unsigned != 0;

    /// <summary>A <see cref="ResultValueKind.List"/>'s items.</summary>
    public IReadOnlyList<ResultValue> Items { get; }

    /// <summary>A <see cref="ResultValueKind.Map"/>'s fields.</summary>
    public IReadOnlyDictionary<string, ResultValue> Fields { get; }

    /// <summary>For a flags field: a flag's short name (<c>PGSIZES</c>) to its bits, null for a name the struct does not
    /// define; null for any other field. An <c>expect:</c> may name a flags field's flags as a list.</summary>
    internal Func<string, ulong?>? ParseFlag { get; }

    internal static ResultValue FromUInt64(ulong value) => new(ResultValueKind.Unsigned, value, 0, "", [], Empty);

    /// <summary>A flags field: its bits, compared as a number or with a list of the C short names of <typeparamref name="TEnum"/>.</summary>
    internal static ResultValue FromFlags<TEnum>(TEnum value)
        where TEnum : struct, Enum =>
        new(ResultValueKind.Unsigned, Convert.ToUInt64(value, CultureInfo.InvariantCulture), 0, "", [], Empty,
            name => AbiNames.TryParse(name.Trim(), out TEnum one) ? Convert.ToUInt64(one, CultureInfo.InvariantCulture) : null);

    internal static ResultValue FromInt64(long value) => new(ResultValueKind.Signed, 0, value, "", [], Empty);

    internal static ResultValue FromBool(bool value) => new(ResultValueKind.Bool, value ? 1UL : 0UL, 0, value ? "true" : "false", [], Empty);

    internal static ResultValue FromString(string value) => new(ResultValueKind.String, 0, 0, value, [], Empty);

    internal static ResultValue FromBytes(ReadOnlySpan<byte> bytes) =>
        new(ResultValueKind.Bytes, 0, 0, Convert.ToHexStringLower(bytes), [], Empty);

    /// <summary>Bytes given as hex text (<c>"de ad be ef"</c>).</summary>
    internal static ResultValue FromHex(string hex) => new(ResultValueKind.Bytes, 0, 0, ScalarSyntax.NormalizeHex(hex), [], Empty);

    internal static ResultValue FromList(IEnumerable<ResultValue> items) => new(ResultValueKind.List, 0, 0, "", [.. items], Empty);

    internal static ResultValue FromMap(IReadOnlyDictionary<string, ResultValue> fields) =>
        new(ResultValueKind.Map, 0, 0, "", [], new Dictionary<string, ResultValue>(fields, StringComparer.Ordinal));

    /// <summary>The value as reports show it: integers in hex (signed ones in decimal), bytes quoted, lists in
    /// brackets, maps in braces.</summary>
    public override string ToString() => Kind switch
    {
        ResultValueKind.Unsigned => "0x" + Unsigned.ToString("x", CultureInfo.InvariantCulture),
        ResultValueKind.Signed => Signed.ToString(CultureInfo.InvariantCulture),
        ResultValueKind.Bytes => $"\"{Text}\"",
        ResultValueKind.List => "[" + string.Join(", ", Items) + "]",
        ResultValueKind.Map => "{ " + string.Join(", ", Fields.Select(p => $"{p.Key}: {p.Value}")) + " }",
        _ => Text,
    };

    /// <summary>Writes the value of field <paramref name="name"/> (the property name already written), integers by
    /// <see cref="JsonValues"/>' rule for that name; a list's items and a map's fields by their own names.</summary>
    internal void WriteJson(Utf8JsonWriter w, string name)
    {
        switch (Kind)
        {
            case ResultValueKind.Unsigned:
                JsonValues.WriteUnsigned(w, name, Unsigned);
                break;
            case ResultValueKind.Signed:
                JsonValues.WriteSigned(w, name, Signed);
                break;
            case ResultValueKind.Bool:
                w.WriteBooleanValue(Bool);
                break;
            case ResultValueKind.List:
                w.WriteStartArray();
                foreach (ResultValue item in Items)
                {
                    item.WriteJson(w, name);
                }
                w.WriteEndArray();
                break;
            case ResultValueKind.Map:
                w.WriteStartObject();
                foreach ((string key, ResultValue field) in Fields)
                {
                    w.WritePropertyName(key);
                    field.WriteJson(w, key);
                }
                w.WriteEndObject();
                break;
            default:
                w.WriteStringValue(Text);
                break;
        }
    }

    private static IReadOnlyDictionary<string, ResultValue> Empty { get; } = new Dictionary<string, ResultValue>();
}
