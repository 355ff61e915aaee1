using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>
/// <c>run --junit FILE</c>: JUnit XML as CI systems read it — a <c>testsuite</c> per scenario (named after it, with
/// its file), a <c>testcase</c> per step (named by its number and call, with the file and line it is written at), a
/// <c>failure</c> for a step that missed its expectation or broke an invariant and an <c>error</c> for one that could
/// not be carried out, each with its first problem as the message and all of them as the text. When nothing ran
/// because input was malformed, each error is a testsuite with one erroring testcase.
/// </summary>
internal static class JUnitWriter
{
    public static void Write(string path, IReadOnlyList<ScenarioRun> runs, IReadOnlyList<InputError> errors)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        Write(stream, runs, errors);
    }

    public static void Write(Stream stream, IReadOnlyList<ScenarioRun> runs, IReadOnlyList<InputError> errors)
    {
        var suites = new XElement("testsuites", new XAttribute("name", "vfiolab run"));
        int tests = 0;
        int failures = 0;
        int errorCount = 0;
        foreach (ScenarioRun run in runs)
        {
            IReadOnlyList<StepReport> steps = run.Outcome.Steps;
            int suiteFailures = steps.Count(s => JsonOutcome(s) == "failed");
            int suiteErrors = steps.Count(s => JsonOutcome(s) == "error");
            var suite = new XElement("testsuite",
                new XAttribute("name", run.Document.Name),
                new XAttribute("tests", steps.Count),
                new XAttribute("failures", suiteFailures),
                new XAttribute("errors", suiteErrors),
                new XAttribute("skipped", 0),
                new XAttribute("file", run.Document.File));
            foreach (StepReport step in steps)
            {
                suite.Add(TestCase(run.Document.Name, step));
            }
            if (run.Sizing.Count > 0)
            {
                suite.Add(new XElement("system-out", string.Join('\n', run.Sizing)));
            }
            suites.Add(suite);
            tests += steps.Count;
            failures += suiteFailures;
            errorCount += suiteErrors;
        }
        foreach (InputError e in errors)
        {
            string file = e.Location?.File ?? "vfiolab run";
            var testCase = new XElement("testcase", new XAttribute("name", "parse"), new XAttribute("classname", file));
            if (e.Location is { } at)
            {
                testCase.Add(new XAttribute("file", at.File), new XAttribute("line", at.Line));
            }
            testCase.Add(new XElement("error", new XAttribute("message", e.ToString()), new XAttribute("type", "malformed")));
            suites.Add(new XElement("testsuite", new XAttribute("name", file), new XAttribute("tests", 1), new XAttribute("failures", 0),
                new XAttribute("errors", 1), new XAttribute("skipped", 0), testCase));
            tests++;
            errorCount++;
        }
        suites.Add(new XAttribute("tests", tests), new XAttribute("failures", failures), new XAttribute("errors", errorCount));
        using var writer = XmlWriter.Create(stream, new XmlWriterSettings { Indent = true, Encoding = new System.Text.UTF8Encoding(false) });
        new XDocument(new XDeclaration("1.0", "utf-8", null), suites).Save(writer);
    }

    private static XElement TestCase(string scenario, StepReport step)
    {
        string name = string.Create(CultureInfo.InvariantCulture, $"{step.Index + 1:D3} {step.Description}");
        var testCase = new XElement("testcase", new XAttribute("name", name), new XAttribute("classname", scenario));
        testCase.Add(new XAttribute("file", step.Location.File), new XAttribute("line", step.Location.Line));
        string outcome = JsonOutcome(step);
        if (outcome != "passed")
        {
            testCase.Add(new XElement(outcome == "error" ? "error" : "failure",
                new XAttribute("message", Clean(step.Problems[0])),
                new XAttribute("type", step.Violations.Count > 0 ? "invariant" : outcome == "error" ? "step" : "expectation"),
                Clean(string.Join('\n', step.Problems))));
        }
        return testCase;
    }

    private static string JsonOutcome(StepReport step) => RunJsonWriter.OutcomeOf(step);

    /// <summary>Drops the characters XML 1.0 cannot hold (a model message may quote raw bytes).</summary>
    private static string Clean(string text) => string.Concat(text.Where(XmlConvert.IsXmlChar));
}
