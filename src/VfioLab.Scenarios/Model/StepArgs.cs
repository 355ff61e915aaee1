using System.Diagnostics.CodeAnalysis;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// The fields of a step (or of a nested map such as <c>bitmap:</c>), validated against the step
/// schema at parse time. Accessors return only validated data; asking for a field with the wrong
/// accessor, or for an absent field without a default, is a bug of the caller
/// (<see cref="InvalidOperationException"/>).
/// </summary>
internal sealed class StepArgs
{
    private readonly Dictionary<string, StepField> _fields;

    public StepArgs(string owner, SourceLocation location, IReadOnlyList<StepField> fields)
    {
        Owner = owner;
        Location = location;
        Names = [.. fields.Select(f => f.Name)];
        _fields = fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
    }

    /// <summary>What these fields belong to, for messages: <c>map_dma</c>, <c>unmap_dma.bitmap</c>.</summary>
    public string Owner { get; }

    public SourceLocation Location { get; }

    /// <summary>The fields present, in file order.</summary>
    public IReadOnlyList<string> Names { get; }

    public bool Has(string field) => _fields.ContainsKey(field);

    public SourceLocation GetLocation(string field) => Get(field).Location;

    /// <summary>A size or address field (also Number and Memlock fields); unresolved until <see cref="ScenarioValue.Resolve"/>.</summary>
    public ScenarioValue GetValue(string field) =>
        Payload<ScenarioValue>(field, FieldKind.Value, FieldKind.Number, FieldKind.Memlock);

    public ScenarioValue? GetValueOrNull(string field) => Has(field) ? GetValue(field) : null;

    /// <summary>A literal number field, or <paramref name="dflt"/> when absent.</summary>
    public ulong GetNumber(string field, ulong dflt) =>
        Has(field) ? Payload<ScenarioValue>(field, FieldKind.Number, FieldKind.Memlock).Literal : dflt;

    /// <summary>A text-like field: string, choice, hex data text, process, device or binding name.</summary>
    public string GetString(string field) =>
        Payload<string>(field, FieldKind.String, FieldKind.Choice, FieldKind.Process, FieldKind.Device, FieldKind.Binding, FieldKind.HexData);

    public string? GetStringOrNull(string field) => Has(field) ? GetString(field) : null;

    public bool GetBool(string field, bool dflt) => Has(field) ? Payload<bool>(field, FieldKind.Bool) : dflt;

    /// <summary>Flag short names in file order; empty when absent.</summary>
    public IReadOnlyList<string> GetNames(string field) => Has(field) ? Payload<IReadOnlyList<string>>(field, FieldKind.Flags) : [];

    public byte[] GetBytes(string field) => Payload<HexBytes>(field, FieldKind.HexData).Bytes;

    public StepArgs GetMap(string field) => Payload<StepArgs>(field, FieldKind.Map);

    public IReadOnlyList<ScenarioValue> GetValues(string field) => Payload<IReadOnlyList<ScenarioValue>>(field, FieldKind.ValueList);

    public ScenarioSymbol GetSymbol(string field) => Payload<ScenarioSymbol>(field, FieldKind.Symbol);

    public StepExpectation GetExpectation(string field) => Payload<StepExpectation>(field, FieldKind.Expect);

    /// <summary>The raw located node of any field.</summary>
    public ScenarioNode GetNode(string field) => Get(field).Node;

    private StepField Get(string field) =>
        _fields.TryGetValue(field, out StepField? f)
            ? f
            : ScenarioThrowHelper.ThrowInvalidOperation<StepField>($"{Owner}: field '{field}' is absent; check Has() first");

    private T Payload<T>(string field, params FieldKind[] kinds)
    {
        StepField f = Get(field);
        if (!kinds.Contains(f.Kind))
        {
            return ScenarioThrowHelper.ThrowInvalidOperation<T>($"{Owner}: field '{field}' is {f.Kind}, not {string.Join(" or ", kinds)}");
        }
        if (f.Kind == FieldKind.HexData && typeof(T) == typeof(string))
        {
            return (T)(object)((HexBytes)f.Payload).Text;
        }
        return f.Payload is T value
            ? value
            : ScenarioThrowHelper.ThrowInvalidOperation<T>($"{Owner}: field '{field}' holds {f.Payload.GetType().Name}");
    }

    /// <summary>A hex data payload: the text as written and its bytes.</summary>
    [SuppressMessage("Performance", "CA1819:Properties should not return arrays", Justification = "internal payload, copied by callers that mutate")]
    internal sealed record HexBytes(string Text, byte[] Bytes);
}
