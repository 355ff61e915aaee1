using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

public sealed class CliApplicationTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApplication.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Run_NoArgument_RunsDefaultScenarioAndExitsZero()
    {
        (int code, string output, _) = Run("run");

        Assert.Equal(0, code);
        Assert.Contains("scenario gpu-passthrough", output);
        Assert.Contains("PASSED", output);
    }

    [Fact]
    public void Run_MalformedFile_ExitsTwoWithFileLineColumn()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-bad-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "vfiolab: 1\nsteps:\n  - open: { paht: /dev/vfio/vfio }\n");
        try
        {
            (int code, string output, string err) = Run("run", path);

            Assert.Equal(2, code);
            Assert.StartsWith($"{path}:3:", err);
            Assert.DoesNotContain("scenario", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Run_FailingExpectation_ExitsOne()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-fail-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "vfiolab: 1\nsteps:\n  - open: { path: /dev/vfio/vfio, expect: EBUSY }\n");
        try
        {
            (int code, string output, _) = Run("run", path);

            Assert.Equal(1, code);
            Assert.Contains("FAIL", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Run_MissingFile_ExitsTwo()
    {
        (int code, _, string err) = Run("run", "/nonexistent/x.yaml");

        Assert.Equal(2, code);
        Assert.Contains("x.yaml", err);
    }

    [Fact]
    public void Run_UnknownOption_ExitsTwoWithUsage()
    {
        (int code, _, string err) = Run("run", "--frobnicate");

        Assert.Equal(2, code);
        Assert.Contains("unknown option", err);
    }

    [Fact]
    public void List_ShowsDefaultFirst()
    {
        (int code, string output, _) = Run("list");

        Assert.Equal(0, code);
        Assert.StartsWith("gpu-passthrough (default)", output);
    }
}
