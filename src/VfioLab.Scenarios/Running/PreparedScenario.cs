using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>A scenario whose host is built and whose steps have not run yet (<see cref="ScenarioRunner.Prepare"/>).
/// It runs once.</summary>
internal sealed class PreparedScenario
{
    private readonly RunOptions _options;
    private ScenarioSession? _session;

    internal PreparedScenario(ScenarioDocument doc, ScenarioSession session, RunOptions options)
    {
        Document = doc;
        _session = session;
        _options = options;
    }

    /// <summary>The scenario.</summary>
    public ScenarioDocument Document { get; }

    /// <summary>Runs every step, reporting each as it finishes; each trace event goes to <paramref name="trace"/> as one
    /// JSON line carrying the step that was running.</summary>
    /// <exception cref="InvalidOperationException">It already ran.</exception>
    public ScenarioOutcome Execute(IScenarioReporter reporter, TextWriter? trace)
    {
        ScenarioSession session = _session ?? ScenarioThrowHelper.ThrowInvalidOperation<ScenarioSession>($"scenario '{Document.Name}' already ran");
        _session = null;
        ScenarioDocument doc = Document;
        TraceStep? current = null;
        if (trace is not null)
        {
            session.Host.SubscribeTrace(ev => trace.WriteLine(TraceJson.Format(ev, current)));
        }
        reporter.Started(doc.Name, doc.Description ?? string.Empty, doc.Steps.Count);
        Reports.SizingSampler? sizing = _options.Sizing ? new Reports.SizingSampler(session.Host) : null;
        var reports = new List<StepReport>(doc.Steps.Count);
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            ScenarioStep step = doc.Steps[i];
            current = new TraceStep(i, step.Location);
            StepReport report = session.Execute(i) with { At = step.Location, Expectation = step.Expect.ToString(), Process = step.Process };
            current = null;
            reports.Add(report);
            sizing?.Sample();
            reporter.StepFinished(report);
        }
        var outcome = new ScenarioOutcome(reports, session.UnexpectedViolations, sizing?.Report());
        reporter.Finished(outcome);
        return outcome;
    }
}
