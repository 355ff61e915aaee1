using System.Text.RegularExpressions;

namespace VfioLab.Preload.Tests;

/// <summary>
/// The preload's own C tests (native/preload/tests/preload-tests.c), one xunit case each: every case runs in a
/// process of its own against a fresh fake server (or none), under LD_PRELOAD.
/// </summary>
public sealed partial class FakeServerSuiteTests
{
    public static TheoryData<string> Cases()
    {
        var source = File.ReadAllText(Path.Combine(RepoPaths.Native, "tests", "preload-tests.c"));
        var data = new TheoryData<string>();
        foreach (Match m in TestEntry().Matches(source))
        {
            data.Add(m.Groups[1].Value);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PreloadTest_AgainstFakeServer_Passes(string name)
    {
        NativeBuild.Ensure();
        var run = ProcessRun.Start(Path.Combine(RepoPaths.Native, "tests", "run.sh"), [$"^{name}$"],
            new Dictionary<string, string?> { ["OUT"] = RepoPaths.Build });
        Assert.True(run.ExitCode == 0, $"preload test {name} failed (exit {run.ExitCode}):\n{run.Both}");
        Assert.Contains($"PASS {name}\n", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 of 1 preload tests passed", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Cases_AreFoundInTheCSource()
    {
        Assert.True(Cases().Count >= 21, "the case table of preload-tests.c was not parsed");
    }

    [GeneratedRegex("""\{ "([a-z0-9_]+)", [a-z0-9_]+, [01] \}""")]
    private static partial Regex TestEntry();
}
