namespace VfioLab.Scenarios.Parsing;

/// <summary>Alternative fields of a schema: at most one of <c>Names</c> may appear, and exactly one when <c>Required</c>.</summary>
internal sealed record FieldGroup(IReadOnlyList<string> Names, bool Required);
