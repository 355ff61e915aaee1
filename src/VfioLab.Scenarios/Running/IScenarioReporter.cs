namespace VfioLab.Scenarios.Running;

/// <summary>Receives a run's progress: the CLI prints it, tests collect it.</summary>
internal interface IScenarioReporter
{
    /// <summary>Before the first step.</summary>
    void Started(string name, string description, int steps);

    /// <summary>After each step.</summary>
    void StepFinished(StepReport report);

    /// <summary>After the last step.</summary>
    void Finished(ScenarioOutcome outcome);
}
