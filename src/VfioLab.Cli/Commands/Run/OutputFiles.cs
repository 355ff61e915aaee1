namespace VfioLab.Cli.Commands.Run;

/// <summary>The files a run writes besides its report, opened before any step runs so that a path that cannot be
/// written is refused with nothing run: the trace (a file, or standard output for <c>-</c>) and the JUnit report.</summary>
internal sealed class OutputFiles : IDisposable
{
    private readonly StreamWriter? _traceFile;
    private readonly FileStream? _junit;

    private OutputFiles(TextWriter? trace, StreamWriter? traceFile, FileStream? junit)
    {
        Trace = trace;
        _traceFile = traceFile;
        _junit = junit;
    }

    /// <summary>Where trace lines go, or null.</summary>
    public TextWriter? Trace { get; }

    /// <summary>Opens what <paramref name="settings"/> asks for; null (and why) when a file cannot be created.</summary>
    public static OutputFiles? Open(RunSettings settings, CliConsole console, out string? error)
    {
        error = null;
        StreamWriter? traceFile = null;
        FileStream? junit = null;
        string? current = null;
        try
        {
            if (settings.TracePath is { } trace && !settings.TraceToStdout)
            {
                current = trace;
                traceFile = new StreamWriter(trace, append: false);
            }
            if (settings.JUnitPath is { } path)
            {
                current = path;
                junit = new FileStream(path, FileMode.Create, FileAccess.Write);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            traceFile?.Dispose();
            error = $"vfiolab run: cannot write '{current}': {e.Message}";
            return null;
        }
        return new OutputFiles(settings.TraceToStdout ? console.Out : traceFile, traceFile, junit);
    }

    /// <summary>Writes the JUnit report, when one was asked for.</summary>
    public void WriteJUnit(IReadOnlyList<ScenarioRun> runs, IReadOnlyList<InputError> errors)
    {
        if (_junit is not null)
        {
            JUnitWriter.Write(_junit, runs, errors);
        }
    }

    public void Dispose()
    {
        _traceFile?.Dispose();
        _junit?.Dispose();
    }
}
