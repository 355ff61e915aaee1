namespace VfioLab.Cli.Commands.Run;

/// <summary>The files a run writes besides its report, opened before any step runs so that a path that cannot be
/// written is refused with nothing run: the trace (a file, or standard output for <c>-</c>) and the JUnit report.</summary>
internal sealed class OutputFiles : IDisposable
{
    private readonly GuardedWriter? _trace;
    private readonly FileStream? _junit;
    private readonly string? _tracePath;

    private OutputFiles(GuardedWriter? trace, string? tracePath, FileStream? junit)
    {
        _trace = trace;
        _tracePath = tracePath;
        _junit = junit;
    }

    /// <summary>Where trace lines go, or null. A write that fails does not stop the run (<see cref="CloseTrace"/>
    /// reports it).</summary>
    public TextWriter? Trace => _trace;

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
        TextWriter? target = settings.TraceToStdout ? console.Out : traceFile;
        return new OutputFiles(target is null ? null : new GuardedWriter(target), settings.TracePath, junit);
    }

    /// <summary>Flushes and closes the trace; the first error any write of it met, as a message naming the
    /// destination, or null.</summary>
    public string? CloseTrace()
    {
        if (_trace is null)
        {
            return null;
        }
        _trace.Flush();
        if (_tracePath != "-")
        {
            _trace.Dispose();
        }
        return _trace.Failure is { } e ? $"vfiolab run: cannot write the trace to '{Printable.Escape(_tracePath ?? "-")}': {e.Message}" : null;
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
        if (_tracePath != "-")
        {
            _trace?.Dispose();
        }
        _junit?.Dispose();
    }
}
