namespace VfioLab.Scenarios.Model;

/// <summary>One key of a map node, with the key's own position.</summary>
internal sealed record ScenarioNodeEntry(string Key, SourceLocation KeyLocation, ScenarioNode Value);
