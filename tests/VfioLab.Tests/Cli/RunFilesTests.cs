using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab run</c> over several files, directories and built-in names: all are parsed and their hosts
/// built before anything runs, then they run in order; exit 1 when any failed, 2 when any is malformed (and then
/// nothing runs at all).</summary>
public sealed class RunFilesTests : IDisposable
{
    private const string Passing = "vfiolab: 1\nname: {0}\nsteps:\n  - open: {{ path: /dev/vfio/vfio }}\n";
    private const string Failing = "vfiolab: 1\nname: {0}\nsteps:\n  - open: {{ path: /dev/vfio/vfio, expect: EBUSY }}\n";

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string File(string name, string template) => _dir.Write(name, string.Format(System.Globalization.CultureInfo.InvariantCulture, template, Path.GetFileNameWithoutExtension(name)));

    [Fact]
    public void Run_TwoFiles_RunsBothInOrderAndExitsZero()
    {
        string b = File("b.yaml", Passing);
        string a = File("a.yaml", Passing);

        (int code, string output, _) = Cli.Run("run", b, a);

        Assert.Equal(ExitCodes.Success, code);
        Assert.True(output.IndexOf("scenario b:", StringComparison.Ordinal) < output.IndexOf("scenario a:", StringComparison.Ordinal), output);
        Assert.Contains("ALL PASSED: 2 of 2 scenarios passed", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Directory_RunsItsYamlFilesInNameOrder()
    {
        File("b.yaml", Passing);
        File("a.yaml", Passing);
        File("c.yml.txt", Failing);

        (int code, string output, _) = Cli.Run("run", _dir.Path);

        Assert.Equal(ExitCodes.Success, code);
        int a = output.IndexOf("scenario a:", StringComparison.Ordinal);
        int b = output.IndexOf("scenario b:", StringComparison.Ordinal);
        Assert.True(a >= 0 && a < b, output);
        Assert.DoesNotContain("scenario c", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_FileDirectoryAndBuiltIn_RunsEach()
    {
        string sub = Directory.CreateDirectory(Path.Combine(_dir.Path, "more")).FullName;
        System.IO.File.WriteAllText(Path.Combine(sub, "x.yaml"), string.Format(System.Globalization.CultureInfo.InvariantCulture, Passing, "x"));
        string a = File("a.yaml", Passing);

        (int code, string output, _) = Cli.Run("run", "-q", a, sub, "arm-64k");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("ALL PASSED: 3 of 3 scenarios passed", output, StringComparison.Ordinal);
        Assert.Contains("scenario arm-64k:", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_OneOfTwoFails_RunsBothAndExitsOne()
    {
        string bad = File("a.yaml", Failing);
        string good = File("b.yaml", Passing);

        (int code, string output, _) = Cli.Run("run", bad, good);

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        Assert.Contains("scenario b:", output, StringComparison.Ordinal);
        Assert.Contains("FAILED: 1 of 2 scenarios passed", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_OneOfTwoMalformed_ExitsTwoAndRunsNothing()
    {
        string good = File("a.yaml", Passing);
        string malformed = _dir.Write("b.yaml", "vfiolab: 1\nsteps:\n  - open: { paht: /dev/vfio/vfio }\n");

        (int code, string output, string err) = Cli.Run("run", good, malformed);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith($"{malformed}:3:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TwoMalformed_ReportsBoth()
    {
        string one = _dir.Write("a.yaml", "vfiolab: 2\nsteps: []\n");
        string two = _dir.Write("b.yaml", "vfiolab: 1\n");

        (int code, _, string err) = Cli.Run("run", one, two);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains($"{one}:1:10: ", err, StringComparison.Ordinal);
        Assert.Contains($"{two}:1:1: ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_HostThatCannotBeBuiltInSecondFile_RunsNothing()
    {
        string good = File("a.yaml", Passing);
        string host = _dir.Write("b.yaml", """
            vfiolab: 1
            devices:
              - { name: a, address: "0000:01:00.0", group: 5, bars: [ { index: 0, size: 1MiB } ] }
              - { name: b, address: "0000:02:00.0", group: 5, iommu: smmu-v3, bars: [ { index: 0, size: 1MiB } ] }
            steps: []
            """);

        (int code, string output, string err) = Cli.Run("run", good, host);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith($"{host}:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_EmptyDirectory_ExitsTwo()
    {
        (int code, _, string err) = Cli.Run("run", _dir.Path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("the directory holds no *.yaml scenario file", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_UnknownName_ExitsTwoPointingAtList()
    {
        (int code, _, string err) = Cli.Run("run", "gpu-passthru");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("'gpu-passthru': no such file, directory or built-in scenario ('vfiolab list' shows the built-ins)", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_FileNamedLikeAnOption_RunsThroughItsPath()
    {
        string odd = File("-odd.yaml", Passing);

        (int code, string output, _) = Cli.Run("run", "--", odd);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("scenario -odd:", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_QuietBeforeAName_TakesTheNameAsAScenario()
    {
        (int code, string output, _) = Cli.Run("run", "--quiet", "arm-64k");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("scenario arm-64k:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("  ok ", output, StringComparison.Ordinal);
    }
}
