namespace VfioLab.Scenarios;

/// <summary>
/// A scenario that cannot run as written: text that is not a well-formed v1 scenario (YAML syntax, an unknown key,
/// kind, field or name, a value in the wrong form, a reference to a name not bound yet), a file that cannot be read
/// or is not UTF-8, or a host the model cannot build from a well-formed file (devices of one group behind different
/// IOMMUs); also a QEMU trace whose line names a vfio event but does not read as QEMU prints it
/// (<see cref="Import.QemuTrace.Parse"/>), or that cannot be replayed. The message is <c>FILE:LINE:COLUMN: reason</c>,
/// line and column 1-based, pointing at the offending key or value, or at the device, process or host a refused set-up
/// concerns. Nothing of the scenario has run.
/// </summary>
public sealed class ScenarioParseException : Exception
{
    internal ScenarioParseException(SourceLocation location, string reason)
        : base($"{location}: {reason}")
    {
        Location = location;
        Reason = reason;
    }

    /// <summary>Where the problem is.</summary>
    public SourceLocation Location { get; }

    /// <summary>The file, as the caller named it.</summary>
    public string File => Location.File;

    /// <summary>The line, from 1.</summary>
    public int Line => Location.Line;

    /// <summary>The column, from 1.</summary>
    public int Column => Location.Column;

    /// <summary>The message without its location prefix.</summary>
    public string Reason { get; }
}
