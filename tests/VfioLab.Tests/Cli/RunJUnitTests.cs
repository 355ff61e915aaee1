using System.Xml.Linq;
using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab run --junit FILE</c>: well-formed JUnit XML for CI systems — a testsuite per scenario with the
/// right counts, a testcase per step with its file and line, a failure carrying the problem.</summary>
public sealed class RunJUnitTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Run_JUnit_WritesASuitePerScenarioAndACasePerStepWithTheFailures()
    {
        string failing = _dir.Write("a.yaml", """
            vfiolab: 1
            name: two-fail
            steps:
              - open: { path: /dev/vfio/vfio }
              - open: { path: /dev/vfio/vfio, expect: EBUSY }
              - close: { fd: 42 }
            """);
        string report = Path.Combine(_dir.Path, "junit.xml");

        (int code, string output, _) = Cli.Run("run", "-q", "--junit", report, failing, "arm-64k");

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        Assert.Contains("FAIL", output, StringComparison.Ordinal);
        XDocument xml = XDocument.Load(report);
        XElement root = xml.Root!;
        Assert.Equal("testsuites", root.Name.LocalName);
        XElement[] suites = [.. root.Elements("testsuite")];
        Assert.Equal(["two-fail", "arm-64k"], suites.Select(s => (string)s.Attribute("name")!));
        Assert.Equal((3, 2, 0), ((int)suites[0].Attribute("tests")!, (int)suites[0].Attribute("failures")!, (int)suites[0].Attribute("errors")!));
        Assert.Equal(3, suites[0].Elements("testcase").Count());
        Assert.Equal(0, (int)suites[1].Attribute("failures")!);
        Assert.Equal(suites[1].Elements("testcase").Count(), (int)suites[1].Attribute("tests")!);
        Assert.Equal((int)suites[0].Attribute("tests")! + (int)suites[1].Attribute("tests")!, (int)root.Attribute("tests")!);
        Assert.Equal(2, (int)root.Attribute("failures")!);
        XElement second = suites[0].Elements("testcase").ElementAt(1);
        Assert.Equal((failing, 5), ((string)second.Attribute("file")!, (int)second.Attribute("line")!));
        XElement failure = second.Element("failure")!;
        Assert.Contains("expected EBUSY, got success", (string)failure.Attribute("message")!, StringComparison.Ordinal);
        Assert.Null(suites[0].Elements("testcase").First().Element("failure"));
        Assert.Contains("EBADF", suites[0].Elements("testcase").Last().Element("failure")!.Value, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_JUnitOfAMalformedFile_WritesAnErroringCaseAndRunsNothing()
    {
        string malformed = _dir.Write("m.yaml", "vfiolab: 1\nsteps:\n  - open: { paht: /x }\n");
        string report = Path.Combine(_dir.Path, "junit.xml");

        (int code, string output, _) = Cli.Run("run", "--junit", report, malformed);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        XElement root = XDocument.Load(report).Root!;
        Assert.Equal((1, 1), ((int)root.Attribute("tests")!, (int)root.Attribute("errors")!));
        XElement error = root.Element("testsuite")!.Element("testcase")!.Element("error")!;
        Assert.StartsWith($"{malformed}:3:", (string)error.Attribute("message")!, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_JUnitToAPathThatCannotBeWritten_ExitsTwoAndRunsNothing()
    {
        string report = Path.Combine(_dir.Path, "no-such-dir", "junit.xml");

        (int code, string output, string err) = Cli.Run("run", "--junit", report);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Contains($"cannot write '{report}'", err, StringComparison.Ordinal);
    }
}
