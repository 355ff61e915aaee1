namespace VfioLab.Scenarios;

/// <summary>
/// Runs a parsed scenario: builds the simulated host, executes every step through the simulated processes' system
/// calls (and the devices and host as the step says), compares each result with the step's <c>expect</c>, runs the
/// invariant checker after every step, and reports as it goes. A step that misses its expectation is reported and
/// the run goes on. <see cref="Prepare"/> builds the host without running anything, so a caller with several files
/// can refuse them all before the first step of any runs.
/// </summary>
public static class ScenarioRunner
{
    /// <summary>Builds the host of <paramref name="document"/> and runs every step.</summary>
    /// <param name="document">The scenario.</param>
    /// <param name="options">How to run it; null: the defaults (invariants checked, no sizing report).</param>
    /// <param name="reporter">Told of the start, each step and the end as they happen; null: nobody.</param>
    /// <param name="trace">Where every system call and internal event goes, one JSON line each
    /// (docs/schemas/trace-event.schema.json) carrying the step that was running; null: nowhere.</param>
    /// <returns>Every step's report, the unexpected invariant violations, and the sizing report when asked.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="document"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The host cannot be built (located at the device, process or host it
    /// concerns); nothing ran.</exception>
    public static ScenarioOutcome Run(ScenarioDocument document, RunOptions? options = null, IScenarioReporter? reporter = null, TextWriter? trace = null) =>
        Prepare(document, options).Execute(reporter, trace);

    /// <summary>Builds the host of <paramref name="document"/>; no step runs.</summary>
    /// <param name="document">The scenario.</param>
    /// <param name="options">How it will run; null: the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="document"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The host cannot be built (located at the device, process or host it
    /// concerns).</exception>
    public static PreparedScenario Prepare(ScenarioDocument document, RunOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(document);
        options ??= new RunOptions();
        return new PreparedScenario(document, new Running.ScenarioSession(document, options), options);
    }
}
