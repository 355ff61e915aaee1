using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>Reads one map of a scenario against the keys it may hold: unknown keys and missing required keys are located errors naming the allowed keys.</summary>
internal sealed class MapReader
{
    private readonly ScenarioNode _node;

    /// <param name="node">The map; an unquoted null scalar reads as an empty map.</param>
    /// <param name="what">Its name in messages (<c>host</c>, <c>devices[1]</c>).</param>
    /// <param name="allowed">The keys it may hold.</param>
    public MapReader(ScenarioNode node, string what, IReadOnlyCollection<string> allowed)
    {
        _node = node;
        What = what;
        if (!node.IsMap && !node.IsNull)
        {
            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: expected a map, got {node.Describe()}");
        }
        foreach (ScenarioNodeEntry entry in node.Entries)
        {
            if (!allowed.Contains(entry.Key))
            {
                ScenarioThrowHelper.ThrowParse(entry.KeyLocation, $"{what}: unknown key '{entry.Key}'; allowed: {string.Join(", ", allowed)}");
            }
        }
    }

    public string What { get; }

    public SourceLocation Location => _node.Location;

    public ScenarioNode? Optional(string key)
    {
        ScenarioNode? value = _node.Get(key);
        return value is { IsNull: true } ? null : value;
    }

    public ScenarioNode Required(string key) =>
        Optional(key) ?? ScenarioThrowHelper.ThrowParse<ScenarioNode>(_node.Location, $"{What}: missing required key '{key}'");

    /// <summary>The key's node even when it is null (<c>steps:</c> with nothing after it).</summary>
    public ScenarioNode? Get(string key) => _node.Get(key);

    public string Path(string key) => $"{What}.{key}";
}
