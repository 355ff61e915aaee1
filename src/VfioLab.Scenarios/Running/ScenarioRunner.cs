using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// Runs a parsed scenario: builds the host, executes every step through the simulated processes'
/// system calls, compares each result with the step's <c>expect</c>, runs the invariant checker
/// after every step, and reports as it goes. <see cref="Prepare"/> builds the host without running
/// anything, so a caller with several files can refuse them all before the first step of any runs.
/// </summary>
internal static class ScenarioRunner
{
    /// <summary>Runs <paramref name="doc"/>. A host that cannot be built is a
    /// <see cref="ScenarioParseException"/> (located at the device or process), and nothing runs.</summary>
    public static ScenarioOutcome Run(ScenarioDocument doc, RunOptions options, IScenarioReporter reporter, TextWriter? trace) =>
        Prepare(doc, options).Execute(reporter, trace);

    /// <summary>Builds the host of <paramref name="doc"/>; no step runs.</summary>
    /// <exception cref="ScenarioParseException">The host cannot be built (located at the device or process).</exception>
    public static PreparedScenario Prepare(ScenarioDocument doc, RunOptions options) => new(doc, new ScenarioSession(doc, options), options);
}
