using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>Passes a run's progress to two reporters (the console and the HTML report's recorder), in order.</summary>
internal sealed class TeeReporter(IScenarioReporter first, IScenarioReporter second) : IScenarioReporter
{
    public void Started(string name, string description, int steps)
    {
        first.Started(name, description, steps);
        second.Started(name, description, steps);
    }

    public void StepFinished(StepReport report)
    {
        first.StepFinished(report);
        second.StepFinished(report);
    }

    public void Finished(ScenarioOutcome outcome)
    {
        first.Finished(outcome);
        second.Finished(outcome);
    }
}
