using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>Keeps every step report of a run, for assertions.</summary>
internal sealed class CollectingReporter : IScenarioReporter
{
    public List<StepReport> Steps { get; } = [];

    public ScenarioOutcome? Outcome { get; private set; }

    public void Started(string name, string description, int steps)
    {
    }

    public void StepFinished(StepReport report) => Steps.Add(report);

    public void Finished(ScenarioOutcome outcome) => Outcome = outcome;
}
