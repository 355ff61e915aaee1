namespace VfioLab.Scenarios.Model;

/// <summary>
/// A malformed scenario file, or a reference that cannot be resolved: the message is
/// <c>FILE:LINE:COLUMN: reason</c>, line and column 1-based.
/// </summary>
internal sealed class ScenarioParseException : Exception
{
    public ScenarioParseException(SourceLocation location, string reason)
        : base($"{location}: {reason}")
    {
        Location = location;
        Reason = reason;
    }

    public SourceLocation Location { get; }

    public string File => Location.File;

    public int Line => Location.Line;

    public int Column => Location.Column;

    /// <summary>The message without its location prefix.</summary>
    public string Reason { get; }
}
