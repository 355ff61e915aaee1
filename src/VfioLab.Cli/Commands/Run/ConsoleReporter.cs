using VfioLab.Scenarios.Running;

namespace VfioLab.Cli.Commands.Run;

/// <summary>Prints each step's outcome as it finishes, a progress line on long runs, and the summary.</summary>
internal sealed class ConsoleReporter(TextWriter writer, bool quiet) : IScenarioReporter
{
    private const int ProgressEvery = 1000;

    public void Started(string name, string description, int steps)
    {
        writer.WriteLine($"scenario {name}: {description} ({steps} steps)");
    }

    public void StepFinished(StepReport report)
    {
        if (!report.Passed || !quiet)
        {
            string mark = report.Passed ? "ok  " : "FAIL";
            writer.WriteLine($"  {mark} {report.Index + 1,4} {report.Location} {report.Description}{(report.Outcome.Length > 0 ? " -> " + report.Outcome : string.Empty)}");
            foreach (string problem in report.Problems)
            {
                writer.WriteLine($"         {problem}");
            }
        }
        else if ((report.Index + 1) % ProgressEvery == 0)
        {
            writer.WriteLine($"  ... {report.Index + 1} steps");
        }
    }

    public void Finished(ScenarioOutcome outcome)
    {
        outcome.Sizing?.Write(writer);
        writer.WriteLine($"{outcome.Passed switch { true => "PASSED", false => "FAILED" }}: {outcome.StepsPassed} of {outcome.StepsRun} steps met their expectation, {outcome.UnexpectedViolations} unexpected invariant violation(s)");
    }
}
