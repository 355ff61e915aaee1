namespace VfioLab.Scenarios.Model;

/// <summary>One validated field of a step: its kind from the schema, its node, and the parsed payload the accessors return.</summary>
internal sealed record StepField(string Name, FieldKind Kind, ScenarioNode Node, object Payload)
{
    public SourceLocation Location => Node.Location;
}
