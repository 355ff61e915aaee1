using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// One field a step (or nested map) may hold: its kind, whether it is required, the words a
/// <see cref="FieldKind.Choice"/> allows, the schema of a <see cref="FieldKind.Map"/>, the outcome
/// words an <see cref="FieldKind.Expect"/> allows.
/// </summary>
internal sealed record FieldSpec(
    string Name,
    FieldKind Kind,
    bool Required = false,
    IReadOnlyList<string>? Choices = null,
    StepSchema? Nested = null,
    StepOutcomes Outcomes = StepOutcomes.None);
