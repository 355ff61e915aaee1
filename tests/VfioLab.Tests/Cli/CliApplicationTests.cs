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
    public void Run_Report_EndsWithTheSizingPeaks()
    {
        (int code, string output, _) = Run("run", "--quiet", "--report");

        Assert.Equal(0, code);
        Assert.Contains("sizing: peaks over 35 step(s), sampled after each step", output, StringComparison.Ordinal);
        Assert.Contains("process qemu[1]: locked_vm peak 16777088 KiB (~16.00 GiB), at the end 0 B; RLIMIT_MEMLOCK 17 GiB", output, StringComparison.Ordinal);
        Assert.Contains("container 1: DMA mappings peak 4 of 65535 (dma_entry_limit)", output, StringComparison.Ordinal);
        Assert.Contains("domain vt-d#0/d1: IOPTEs peak 8671 (4K x 480, 2M x 8191); page tables peak", output, StringComparison.Ordinal);
        Assert.True(output.IndexOf("sizing:", StringComparison.Ordinal) < output.IndexOf("PASSED", StringComparison.Ordinal));
    }

    [Fact]
    public void Run_ReportOnPowerHost_ShowsEachTceWindow()
    {
        (int code, string output, _) = Run("run", "--quiet", "--report", "spapr-v2-ddw-prereg");

        Assert.Equal(0, code);
        Assert.DoesNotContain("dma_entry_limit", output, StringComparison.Ordinal);
        Assert.Contains("group 1 tce table #1 [0x800000000000000, 0x800000fffffffff]", output, StringComparison.Ordinal);
        Assert.Contains("valid TCEs peak 4096 of 1048576; table memory charged 16512 KiB (~16.13 MiB)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_WithoutReport_PrintsNoSizing()
    {
        (int code, string output, _) = Run("run", "--quiet");
        Assert.Equal(0, code);
        Assert.DoesNotContain("sizing:", output, StringComparison.Ordinal);
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
