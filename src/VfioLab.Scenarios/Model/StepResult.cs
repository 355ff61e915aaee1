namespace VfioLab.Scenarios.Model;

/// <summary>What a step returned, as named fields the runner fills in (<c>result</c>, <c>errno</c>, <c>size</c>, <c>bytes</c>, ...), compared with <c>expect:</c> maps by <see cref="ExpectMatcher"/>.</summary>
internal sealed class StepResult
{
    private readonly Dictionary<string, ResultValue> _fields = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, ResultValue> Fields => _fields;

    /// <summary>Sets a field, replacing an earlier value; returns this for chaining.</summary>
    public StepResult Set(string name, ResultValue value)
    {
        _fields[name] = value;
        return this;
    }

    public StepResult Set(string name, ulong value) => Set(name, ResultValue.FromUInt64(value));

    public StepResult Set(string name, long value) => Set(name, ResultValue.FromInt64(value));

    public StepResult Set(string name, bool value) => Set(name, ResultValue.FromBool(value));

    public StepResult Set(string name, string value) => Set(name, ResultValue.FromString(value));

    public bool TryGet(string name, out ResultValue? value) => _fields.TryGetValue(name, out value);

    public ResultValue AsMap() => ResultValue.FromMap(_fields);
}
