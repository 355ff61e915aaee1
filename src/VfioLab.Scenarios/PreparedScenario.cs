using VfioLab.Lab;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Running;

namespace VfioLab.Scenarios;

/// <summary>A scenario whose host is built and whose steps have not run yet (<see cref="ScenarioRunner.Prepare"/>).
/// It runs once.</summary>
public sealed class PreparedScenario
{
    private readonly RunOptions _options;
    private ScenarioSession? _session;

    internal PreparedScenario(ScenarioDocument document, ScenarioSession session, RunOptions options)
    {
        Document = document;
        Host = session.Host;
        _session = session;
        _options = options;
    }

    /// <summary>The scenario.</summary>
    public ScenarioDocument Document { get; }

    /// <summary>The simulated host the scenario built, through the model's public API: its processes, devices and
    /// containers can be inspected (or driven) before, during (from a reporter) and after the run.</summary>
    public LabHost Host { get; }

    /// <summary>Runs every step, reporting each as it finishes.</summary>
    /// <param name="reporter">Told of the start, each step and the end; null: nobody.</param>
    /// <param name="trace">Where every system call and internal event goes, one JSON line each
    /// (docs/schemas/trace-event.schema.json) carrying the step that was running; null: nowhere.</param>
    /// <returns>Every step's report, the unexpected invariant violations, and the sizing report when the options
    /// asked for one.</returns>
    /// <exception cref="InvalidOperationException">It already ran.</exception>
    public ScenarioOutcome Execute(IScenarioReporter? reporter = null, TextWriter? trace = null)
    {
        ScenarioSession session = _session ?? ScenarioThrowHelper.ThrowInvalidOperation<ScenarioSession>($"scenario '{Document.Name}' already ran");
        _session = null;
        ScenarioDocument doc = Document;
        TraceStep? current = null;
        if (trace is not null)
        {
            session.Host.SubscribeTrace(ev => trace.WriteLine(TraceJson.Format(ev, current)));
        }
        reporter?.Started(doc.Name, doc.Description ?? string.Empty, doc.Steps.Count);
        Reports.SizingSampler? sizing = _options.Sizing ? new Reports.SizingSampler(session.Host) : null;
        var reports = new List<StepReport>(doc.Steps.Count);
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            current = new TraceStep(i, doc.Steps[i].Location);
            StepReport report = session.Execute(i);
            current = null;
            reports.Add(report);
            sizing?.Sample();
            reporter?.StepFinished(report);
        }
        var outcome = new ScenarioOutcome(reports, session.UnexpectedViolations, sizing?.Report());
        reporter?.Finished(outcome);
        return outcome;
    }
}
