using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// Runs a parsed scenario: builds the host, executes every step through the simulated processes'
/// system calls, compares each result with the step's <c>expect</c>, runs the invariant checker
/// after every step, and reports as it goes.
/// </summary>
internal static class ScenarioRunner
{
    /// <summary>Runs <paramref name="doc"/>. A host that cannot be built is a
    /// <see cref="ScenarioParseException"/> (located at the device or process), and nothing runs.</summary>
    public static ScenarioOutcome Run(ScenarioDocument doc, RunOptions options, IScenarioReporter reporter, TextWriter? trace)
    {
        var session = new ScenarioSession(doc, options);
        if (trace is not null)
        {
            session.Host.SubscribeTrace(ev => trace.WriteLine(TraceJson.Format(ev)));
        }
        reporter.Started(doc.Name, doc.Description ?? string.Empty, doc.Steps.Count);
        Reports.SizingSampler? sizing = options.Sizing ? new Reports.SizingSampler(session.Host) : null;
        var reports = new List<StepReport>(doc.Steps.Count);
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            StepReport report = session.Execute(i);
            reports.Add(report);
            sizing?.Sample();
            reporter.StepFinished(report);
        }
        var outcome = new ScenarioOutcome(reports, session.UnexpectedViolations, sizing?.Report());
        reporter.Finished(outcome);
        return outcome;
    }
}
