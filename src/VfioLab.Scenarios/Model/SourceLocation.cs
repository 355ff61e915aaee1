namespace VfioLab.Scenarios.Model;

/// <summary>A position in a scenario file: file name, 1-based line and 1-based column.</summary>
internal readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}
