using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// One field a step (or nested map) may hold: its kind, whether it is required, the words a
/// <see cref="FieldKind.Choice"/> allows, the schema of a <see cref="FieldKind.Map"/>, the outcome
/// words an <see cref="FieldKind.Expect"/> allows. For <see cref="FieldKind.Flags"/> and <see cref="FieldKind.Symbol"/>,
/// <c>Choices</c> are the names the field accepts (a struct's flag names, the <c>linux/vfio.h</c> extensions or
/// ioctl requests) and <c>Noun</c> says what they are in messages; a name outside them is refused at parse time.
/// </summary>
internal sealed record FieldSpec(
    string Name,
    FieldKind Kind,
    bool Required = false,
    IReadOnlyList<string>? Choices = null,
    StepSchema? Nested = null,
    StepOutcomes Outcomes = StepOutcomes.None,
    string? Noun = null);
