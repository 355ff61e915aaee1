namespace VfioLab.Scenarios.Model;

/// <summary>
/// One step of a scenario: its kind (the map's single key, e.g. <c>map_dma</c>), its position, the
/// common fields (<c>process</c>, <c>as</c>, <c>expect</c>) and its other fields, validated against
/// <c>StepSchema</c>. The accessors delegate to <see cref="Args"/>.
/// </summary>
internal sealed class ScenarioStep
{
    public ScenarioStep(string kind, int index, SourceLocation location, string? process, string? @as, StepExpectation expect, StepArgs args)
    {
        Kind = kind;
        Index = index;
        Location = location;
        Process = process;
        As = @as;
        Expect = expect;
        Args = args;
    }

    public string Kind { get; }

    /// <summary>0-based position in <c>steps:</c>.</summary>
    public int Index { get; }

    public SourceLocation Location { get; }

    /// <summary>The <c>process:</c> field, or null for the default (the first declared process).</summary>
    public string? Process { get; }

    /// <summary>The name this step's result is bound to, or null.</summary>
    public string? As { get; }

    public StepExpectation Expect { get; }

    public StepArgs Args { get; }

    public bool Has(string field) => Args.Has(field);

    public ScenarioValue GetValue(string field) => Args.GetValue(field);

    public ScenarioValue? GetValueOrNull(string field) => Args.GetValueOrNull(field);

    public ulong GetNumber(string field, ulong dflt) => Args.GetNumber(field, dflt);

    public string GetString(string field) => Args.GetString(field);

    public string? GetStringOrNull(string field) => Args.GetStringOrNull(field);

    public bool GetBool(string field, bool dflt) => Args.GetBool(field, dflt);

    public IReadOnlyList<string> GetNames(string field) => Args.GetNames(field);

    public byte[] GetBytes(string field) => Args.GetBytes(field);

    public StepArgs GetMap(string field) => Args.GetMap(field);

    public IReadOnlyList<ScenarioValue> GetValues(string field) => Args.GetValues(field);

    public ScenarioSymbol GetSymbol(string field) => Args.GetSymbol(field);

    public ScenarioNode GetNode(string field) => Args.GetNode(field);

    public override string ToString() => $"{Location}: {Kind}";
}
