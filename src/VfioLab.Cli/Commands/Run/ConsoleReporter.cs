using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>Prints each step's outcome as it finishes (only failures when quiet), a progress line on long quiet runs,
/// the sizing report when one was taken, and the scenario's summary; coloured when the stream is a terminal. A failed
/// step says why its call was refused (<see cref="StepReport.Refusal"/>) when no problem already does; with
/// <paramref name="verbose"/> an expected error says it too.</summary>
internal sealed class ConsoleReporter(TextWriter writer, ConsoleStyle style, bool quiet, bool verbose = false) : IScenarioReporter
{
    private const int ProgressEvery = 1000;

    public void Started(string name, string description, int steps)
    {
        writer.WriteLine($"{style.Strong($"scenario {Printable.Escape(name)}")}: {Printable.Escape(description)} ({steps} steps)");
    }

    public void StepFinished(StepReport report)
    {
        if (!report.Passed || !quiet)
        {
            string mark = report.Passed ? style.Ok("ok  ") : style.Fail("FAIL");
            string returned = report.Outcome.Length > 0 ? " -> " + Printable.Escape(report.Outcome) : string.Empty;
            writer.WriteLine($"  {mark} {report.Index + 1,4} {style.Dim(Printable.Escape(report.Location.ToString()))} {Printable.Escape(report.Description)}{returned}");
            foreach (string problem in report.Problems)
            {
                writer.WriteLine($"         {style.Fail(Printable.Escape(problem))}");
            }
            if (report.Refusal is { } refusal && (report.Passed ? verbose : !report.Problems.Any(p => p.Contains(refusal.Reason, StringComparison.Ordinal))))
            {
                string why = Printable.Escape($"why: {refusal}");
                writer.WriteLine($"         {(report.Passed ? style.Dim(why) : style.Fail(why))}");
            }
            foreach (StepViolation hazard in report.Hazards)
            {
                writer.WriteLine($"         {style.Warn(Printable.Escape($"hazard {hazard.Invariant}: {hazard.Message}"))}");
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
        string verdict = outcome.Passed ? style.Ok(style.Strong("PASSED")) : style.Fail(style.Strong("FAILED"));
        writer.WriteLine($"{verdict}: {outcome.StepsPassed} of {outcome.StepsRun} steps met their expectation, {outcome.UnexpectedViolations} unexpected invariant violation(s)");
    }
}
