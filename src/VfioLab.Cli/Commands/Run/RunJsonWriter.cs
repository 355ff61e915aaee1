using System.Text.Json;
using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>
/// <c>run --json</c>: one JSON document (docs/schemas/run-output.schema.json) with the version, the exit code, a
/// summary, the input errors (when nothing ran), and per scenario its steps — index, location, kind, call,
/// expectation, outcome, errno, why the call was refused (<c>refusal</c>: errno, check, reason, source), result fields,
/// problems — its unexpected invariant violations and its summary.
/// A step's result fields follow the value convention of docs/schemas (<see cref="StepResult.WriteJson"/>): hex strings
/// for addresses, sizes, offsets and flags, numbers otherwise.
/// </summary>
internal static class RunJsonWriter
{
    public static void Write(TextWriter output, IReadOnlyList<ScenarioRun> runs, IReadOnlyList<InputError> errors, int exitCode)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", CliVersion.Informational);
            w.WriteNumber("exit_code", exitCode);
            w.WriteBoolean("passed", exitCode == ExitCodes.Success);
            w.WriteStartObject("summary");
            w.WriteNumber("scenarios", runs.Count);
            w.WriteNumber("scenarios_failed", runs.Count(r => !r.Outcome.Passed));
            WriteStepCounts(w, runs.SelectMany(r => r.Outcome.Steps).ToList(), runs.Sum(r => r.Outcome.UnexpectedViolations));
            w.WriteEndObject();
            w.WriteStartArray("errors");
            foreach (InputError e in errors)
            {
                w.WriteStartObject();
                w.WriteString("message", e.ToString());
                if (e.Location is { } at)
                {
                    WriteLocation(w, at);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("scenarios");
            foreach (ScenarioRun run in runs)
            {
                WriteScenario(w, run);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        output.Flush();
    }

    private static void WriteScenario(Utf8JsonWriter w, ScenarioRun run)
    {
        ScenarioDocument doc = run.Document;
        w.WriteStartObject();
        w.WriteString("name", doc.Name);
        w.WriteString("description", doc.Description ?? string.Empty);
        w.WriteString("file", doc.File);
        w.WriteBoolean("passed", run.Outcome.Passed);
        w.WriteStartObject("summary");
        WriteStepCounts(w, run.Outcome.Steps, run.Outcome.UnexpectedViolations);
        w.WriteEndObject();
        w.WriteStartArray("steps");
        foreach (StepReport step in run.Outcome.Steps)
        {
            WriteStep(w, step);
        }
        w.WriteEndArray();
        WriteFindings(w, "violations", run.Outcome.Steps, step => step.Violations);
        WriteFindings(w, "hazards", run.Outcome.Steps, step => step.Hazards);
        if (run.Outcome.Sizing is not null)
        {
            w.WriteStartArray("sizing");
            foreach (string line in run.Sizing)
            {
                w.WriteStringValue(line);
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    /// <summary>The invariant findings after each step, in step order: broken invariants no <c>expect_violation</c>
    /// announced, or hazards (states the scenario created through calls Linux allows).</summary>
    private static void WriteFindings(Utf8JsonWriter w, string name, IReadOnlyList<StepReport> steps,
        Func<StepReport, IReadOnlyList<StepViolation>> findings)
    {
        w.WriteStartArray(name);
        foreach (StepReport step in steps)
        {
            foreach (StepViolation v in findings(step))
            {
                w.WriteStartObject();
                w.WriteNumber("step", step.Index);
                w.WriteString("at", step.Location.ToString());
                w.WriteString("invariant", v.Invariant);
                w.WriteString("message", v.Message);
                w.WriteEndObject();
            }
        }
        w.WriteEndArray();
    }

    private static void WriteStep(Utf8JsonWriter w, StepReport step)
    {
        w.WriteStartObject();
        w.WriteNumber("index", step.Index);
        w.WriteString("at", step.Location.ToString());
        WriteLocation(w, step.Location);
        w.WriteString("kind", step.Kind);
        w.WriteString("process", step.Process);
        w.WriteString("call", step.Description);
        w.WriteString("expect", step.Expectation);
        w.WriteString("outcome", OutcomeOf(step));
        w.WriteString("returned", step.Outcome);
        w.WriteString("errno", step.Errno);
        if (step.Refusal is { } refusal)
        {
            w.WriteStartObject("refusal");
            w.WriteString("errno", refusal.Errno.ToString());
            w.WriteString("check", refusal.Check);
            w.WriteString("reason", refusal.Reason);
            w.WriteString("source", refusal.Source);
            w.WriteString("text", refusal.ToString());
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("refusal");
        }
        if (step.Result is null)
        {
            w.WriteNull("result");
        }
        else
        {
            w.WritePropertyName("result");
            step.Result.WriteJson(w);
        }
        w.WriteStartArray("problems");
        foreach (string p in step.Problems)
        {
            w.WriteStringValue(p);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary><c>passed</c>; <c>failed</c> when the call ran and missed its expectation (or broke an invariant);
    /// <c>error</c> when it could not be carried out as written (an fd that is not a group, a value out of range).</summary>
    internal static string OutcomeOf(StepReport step) => step.Passed ? "passed" : step.Result is null ? "error" : "failed";

    private static void WriteStepCounts(Utf8JsonWriter w, IReadOnlyList<StepReport> steps, int unexpectedViolations)
    {
        int passed = steps.Count(s => s.Passed);
        w.WriteNumber("steps", steps.Count);
        w.WriteNumber("steps_passed", passed);
        w.WriteNumber("steps_failed", steps.Count - passed);
        w.WriteNumber("unexpected_violations", unexpectedViolations);
    }

    private static void WriteLocation(Utf8JsonWriter w, SourceLocation at)
    {
        w.WriteString("file", at.File);
        w.WriteNumber("line", at.Line);
        w.WriteNumber("column", at.Column);
    }
}
