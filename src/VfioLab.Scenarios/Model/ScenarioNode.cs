namespace VfioLab.Scenarios.Model;

/// <summary>
/// A YAML node of a scenario file with its position: a scalar kept as text (no YAML 1.1/1.2
/// typing is applied, so <c>on</c>, <c>0x10</c> and <c>0000:01:00.0</c> stay what was written),
/// a map with scalar keys in file order, or a sequence.
/// </summary>
internal sealed class ScenarioNode
{
    private static readonly IReadOnlyList<ScenarioNodeEntry> NoEntries = [];
    private static readonly IReadOnlyList<ScenarioNode> NoItems = [];

    private ScenarioNode(ScenarioNodeKind kind, SourceLocation location, string text, bool isQuoted,
        IReadOnlyList<ScenarioNodeEntry> entries, IReadOnlyList<ScenarioNode> items)
    {
        Kind = kind;
        Location = location;
        Text = text;
        IsQuoted = isQuoted;
        Entries = entries;
        Items = items;
    }

    public ScenarioNodeKind Kind { get; }

    public SourceLocation Location { get; }

    public int Line => Location.Line;

    public int Column => Location.Column;

    /// <summary>The scalar's text; empty for maps and sequences.</summary>
    public string Text { get; }

    /// <summary>The scalar was written in quotes (so <c>"~"</c> is text, not null).</summary>
    public bool IsQuoted { get; }

    /// <summary>The map's entries in file order; empty for scalars and sequences.</summary>
    public IReadOnlyList<ScenarioNodeEntry> Entries { get; }

    /// <summary>The sequence's items; empty for scalars and maps.</summary>
    public IReadOnlyList<ScenarioNode> Items { get; }

    public bool IsScalar => Kind == ScenarioNodeKind.Scalar;

    public bool IsMap => Kind == ScenarioNodeKind.Map;

    public bool IsSequence => Kind == ScenarioNodeKind.Sequence;

    /// <summary>An unquoted empty, <c>~</c> or <c>null</c> scalar (<c>exit:</c> with nothing after it).</summary>
    public bool IsNull => Kind == ScenarioNodeKind.Scalar && !IsQuoted && Text is "" or "~" or "null" or "Null" or "NULL";

    public static ScenarioNode Scalar(SourceLocation location, string text, bool isQuoted) =>
        new(ScenarioNodeKind.Scalar, location, text, isQuoted, NoEntries, NoItems);

    public static ScenarioNode Map(SourceLocation location, IReadOnlyList<ScenarioNodeEntry> entries) =>
        new(ScenarioNodeKind.Map, location, "", false, entries, NoItems);

    public static ScenarioNode Sequence(SourceLocation location, IReadOnlyList<ScenarioNode> items) =>
        new(ScenarioNodeKind.Sequence, location, "", false, NoEntries, items);

    /// <summary>The value of a map key, or null when the map lacks it (or this is not a map).</summary>
    public ScenarioNode? Get(string key)
    {
        foreach (ScenarioNodeEntry entry in Entries)
        {
            if (entry.Key == key)
            {
                return entry.Value;
            }
        }
        return null;
    }

    /// <summary>How the node reads in a message: <c>'text'</c>, <c>a map</c>, <c>a list</c>.</summary>
    public string Describe() => Kind switch
    {
        ScenarioNodeKind.Map => "a map",
        ScenarioNodeKind.Sequence => "a list",
        _ when IsNull => "nothing",
        _ => $"'{Abbreviate(Text)}'",
    };

    private static string Abbreviate(string text) => text.Length <= 40 ? text : string.Concat(text.AsSpan(0, 37), "...");
}
