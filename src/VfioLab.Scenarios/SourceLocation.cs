namespace VfioLab.Scenarios;

/// <summary>A position in a scenario file: the file's name as the caller gave it (a built-in's is
/// <c>&lt;built-in&gt;/NAME.yaml</c>), a 1-based line and a 1-based column.</summary>
/// <param name="File">The file name used in messages.</param>
/// <param name="Line">The line, from 1.</param>
/// <param name="Column">The column, from 1.</param>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    /// <summary><c>FILE:LINE:COLUMN</c>, as every located message starts.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}";
}
