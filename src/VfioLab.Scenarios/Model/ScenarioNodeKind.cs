namespace VfioLab.Scenarios.Model;

/// <summary>The shape of a <see cref="ScenarioNode"/>.</summary>
internal enum ScenarioNodeKind
{
    Scalar,
    Map,
    Sequence,
}
