using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace VfioLab.Scenarios;

/// <summary>
/// What a step returned, as named fields: <c>result</c> (the call's return value), <c>errno</c> (its name, when the
/// call failed) and whatever else the step kind returns (<c>size</c>, <c>bytes</c>, <c>address</c>, ...; listed with
/// each step in docs/scenario-format.md). A step's <c>expect:</c> map is compared with these fields.
/// </summary>
public sealed class StepResult
{
    /// <summary>The field a step's <c>as:</c> binds; it repeats another field (an fd, an address, a pid).</summary>
    internal const string BindField = "bind";

    private readonly Dictionary<string, ResultValue> _fields = new(StringComparer.Ordinal);

    internal StepResult()
    {
    }

    /// <summary>Every field, by name.</summary>
    public IReadOnlyDictionary<string, ResultValue> Fields => _fields;

    /// <summary>Looks a field up.</summary>
    /// <param name="name">The field's name.</param>
    /// <param name="value">The field's value, or null when the step did not return it.</param>
    /// <returns>Whether the step returned the field.</returns>
    public bool TryGet(string name, [NotNullWhen(true)] out ResultValue? value) => _fields.TryGetValue(name, out value);

    /// <summary>
    /// Writes the fields as one JSON object, in the value convention of docs/schemas/: an integer is a
    /// <c>"0x…"</c> string when its field holds an address, a size, an offset, a page frame, an ioctl argument or
    /// flags (by the field's name) and a JSON number otherwise; booleans are booleans, bytes a hex string, lists
    /// arrays and maps objects. <c>bind</c>, which repeats another field, is left out.
    /// </summary>
    /// <param name="writer">Where the object goes (as a value: a property name, if any, already written).</param>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void WriteJson(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        foreach ((string name, ResultValue value) in _fields)
        {
            if (name != BindField)
            {
                writer.WritePropertyName(name);
                value.WriteJson(writer, name);
            }
        }
        writer.WriteEndObject();
    }

    /// <summary>Sets a field, replacing an earlier value; returns this for chaining.</summary>
    internal StepResult Set(string name, ResultValue value)
    {
        _fields[name] = value;
        return this;
    }

    internal StepResult Set(string name, ulong value) => Set(name, ResultValue.FromUInt64(value));

    internal StepResult Set(string name, long value) => Set(name, ResultValue.FromInt64(value));

    internal StepResult Set(string name, bool value) => Set(name, ResultValue.FromBool(value));

    internal StepResult Set(string name, string value) => Set(name, ResultValue.FromString(value));

    internal ResultValue AsMap() => ResultValue.FromMap(_fields);
}
