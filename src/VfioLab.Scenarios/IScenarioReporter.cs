namespace VfioLab.Scenarios;

/// <summary>Receives a run's progress as it happens (the CLI prints it, a test may collect it). Each method does
/// nothing unless implemented; an exception thrown from one ends the run there and comes out of the call that ran
/// it.</summary>
public interface IScenarioReporter
{
    /// <summary>Before the first step.</summary>
    /// <param name="name">The scenario's name.</param>
    /// <param name="description">Its description, or empty.</param>
    /// <param name="steps">How many steps will run.</param>
    void Started(string name, string description, int steps)
    {
    }

    /// <summary>After each step, with what it did.</summary>
    /// <param name="report">The step's report.</param>
    void StepFinished(StepReport report)
    {
    }

    /// <summary>After the last step.</summary>
    /// <param name="outcome">The whole run's outcome, as the run returns it.</param>
    void Finished(ScenarioOutcome outcome)
    {
    }
}
