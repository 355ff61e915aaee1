using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>
/// <c>vfiolab run [FILE|DIR|NAME]...</c>: parses every scenario and builds every host first (if any is malformed,
/// nothing runs: the errors, exit 2), then runs them in order, printing each step's outcome and a summary — or, with
/// <c>--json</c>, one JSON document — and writing the trace and the JUnit report when asked; exit 0 only when
/// every scenario met every expectation.
/// </summary>
internal sealed class RunCommand(CliConsole console)
{
    public int Execute(RunSettings settings)
    {
        var errors = new List<InputError>();
        IReadOnlyList<ScenarioDocument> docs = ScenarioInput.Load(settings.Scenarios, errors);
        var options = new RunOptions { CheckInvariants = settings.Check, Sizing = settings.Report };
        var prepared = new List<PreparedScenario>(docs.Count);
        foreach (ScenarioDocument doc in docs)
        {
            try
            {
                prepared.Add(ScenarioRunner.Prepare(doc, options));
            }
            catch (ScenarioParseException e)
            {
                errors.Add(InputError.From(e));
            }
        }
        if (errors.Count > 0)
        {
            return Refuse(settings, errors);
        }

        using OutputFiles? files = OutputFiles.Open(settings, console, out string? openError);
        if (files is null)
        {
            return Refuse(settings with { JUnitPath = null }, [new InputError(null, openError!)]);
        }
        using FileStream? htmlFile = OpenHtml(settings, out string? htmlError);
        if (htmlError is not null)
        {
            return Refuse(settings with { JUnitPath = null }, [new InputError(null, htmlError)]);
        }
        HtmlReport? html = htmlFile is null ? null : new HtmlReport(prepared.Count == 1 ? $"vfiolab run {prepared[0].Document.Name}" : "vfiolab run");
        TextWriter text = settings.Json ? TextWriter.Null : settings.TraceToStdout ? console.Error : console.Out;
        ConsoleStyle style = settings.TraceToStdout ? console.ErrorStyle : console.OutStyle;
        var runs = new List<ScenarioRun>(prepared.Count);
        foreach (PreparedScenario p in prepared)
        {
            IScenarioReporter reporter = new ConsoleReporter(text, style, settings.Quiet, settings.Verbose);
            ScenarioOutcome outcome = p.Execute(html is null ? reporter : new TeeReporter(reporter, html.Record(p)), files.Trace);
            files.Trace?.Flush();
            runs.Add(new ScenarioRun(p.Document, outcome, SizingLines(outcome)));
        }
        int failed = runs.Count(r => !r.Outcome.Passed);
        int exit = ExitCodes.ForRun(malformed: false, anyFailed: failed > 0);
        if (runs.Count > 1)
        {
            string verdict = failed == 0 ? style.Ok(style.Strong("ALL PASSED")) : style.Fail(style.Strong("FAILED"));
            text.WriteLine($"{verdict}: {runs.Count - failed} of {runs.Count} scenarios passed");
        }
        if (settings.Json)
        {
            RunJsonWriter.Write(console.Out, runs, [], exit);
        }
        files.WriteJUnit(runs, []);
        string? outputError = files.CloseTrace();
        if (html is not null)
        {
            try
            {
                using var writer = new StreamWriter(htmlFile!, new System.Text.UTF8Encoding(false));
                html.Write(writer);
            }
            catch (IOException e)
            {
                outputError ??= $"vfiolab run: cannot write the HTML report '{settings.HtmlPath}': {e.Message}";
            }
        }
        if (outputError is not null)
        {
            // The outcome is out; an output that lost part of the trace or the report still fails the command, with its own code.
            console.Error.WriteLine(console.ErrorStyle.Fail(outputError));
            return ExitCodes.OutputError;
        }
        return exit;
    }

    /// <summary>Creates the HTML report's file before anything runs, so a path that cannot be written is refused.</summary>
    private static FileStream? OpenHtml(RunSettings settings, out string? error)
    {
        error = null;
        if (settings.HtmlPath is not { } path)
        {
            return null;
        }
        try
        {
            return new FileStream(path, FileMode.Create, FileAccess.Write);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error = $"vfiolab run: cannot write '{path}': {e.Message}";
            return null;
        }
    }

    /// <summary>Nothing runs: every error on standard error, and the JSON document and JUnit report say so too.</summary>
    private int Refuse(RunSettings settings, IReadOnlyList<InputError> errors)
    {
        foreach (InputError e in errors)
        {
            console.Error.WriteLine(console.ErrorStyle.Fail(e.ToString()));
        }
        int exit = ExitCodes.ForRun(malformed: true, anyFailed: false);
        if (settings.Json)
        {
            RunJsonWriter.Write(console.Out, [], errors, exit);
        }
        if (settings.JUnitPath is { } junit)
        {
            try
            {
                JUnitWriter.Write(junit, [], errors);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                console.Error.WriteLine($"vfiolab run: cannot write '{junit}': {e.Message}");
            }
        }
        return exit;
    }

    private static IReadOnlyList<string> SizingLines(ScenarioOutcome outcome)
    {
        if (outcome.Sizing is null)
        {
            return [];
        }
        var text = new StringWriter();
        outcome.Sizing.Write(text);
        return text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
    }
}
