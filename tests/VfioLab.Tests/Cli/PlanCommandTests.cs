using System.Text.Json;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab plan</c>: options and description files, the limits it judges (exit 1 with the shortfall),
/// <c>--json</c> against its schema, <c>--emit-scenario</c> that <c>run</c> accepts, <c>--html</c>, and the input it
/// refuses (exit 2, nothing planned).</summary>
public sealed class PlanCommandTests
{
    private static readonly string[] Gpu = ["plan", "--memory", "4GiB", "--backing", "hugetlb-2m", "--device", "gpu0:16MiB,4GiB"];

    [Fact]
    public void Plan_Json_IsValidAgainstTheSchemaAndTheModelAgrees()
    {
        (int code, string output, string err) = Cli.Run([.. Gpu, "--json", "--memlock", "8GiB", "--dma-entry-limit", "100"]);

        Assert.True(code == 0, err);
        using JsonDocument doc = SchemaFiles.AssertValid(SchemaFiles.PlanOutput, output);
        JsonElement root = doc.RootElement;
        Assert.Equal((4L << 30) - (128 << 10), root.GetProperty("memlock_needed_bytes").GetInt64());
        Assert.Equal(5, root.GetProperty("dma_entries_needed").GetInt32());
        Assert.True(root.GetProperty("model").GetProperty("agrees").GetBoolean());
        Assert.Equal(0, root.GetProperty("limits").GetProperty("shortfalls").GetArrayLength());
        Assert.All(root.GetProperty("figures").EnumerateArray(), f => Assert.Equal(f.GetProperty("needed").GetUInt64(), f.GetProperty("measured").GetUInt64()));
    }

    [Fact]
    public void Plan_MemlockTooSmall_ExitsOneSayingByHowMuch()
    {
        (int code, string output, string err) = Cli.Run([.. Gpu, "--memlock", "2GiB"]);

        Assert.Equal(1, code);
        Assert.Contains("RLIMIT_MEMLOCK 2 GiB is 2097024 KiB (~2.00 GiB) short of the 4194176 KiB (~4.00 GiB) the VM locks", err, StringComparison.Ordinal);
        Assert.Contains("process qemu locked_vm_bytes", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_DmaEntryLimitTooSmall_ExitsOneSayingByHowMuch()
    {
        (int code, _, string err) = Cli.Run([.. Gpu, "--dma-entry-limit", "3"]);

        Assert.Equal(1, code);
        Assert.Contains("container 1: dma_entry_limit 3 is 2 entries short of the 5 mappings it makes", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_EmitScenario_IsAScenarioRunAccepts()
    {
        (int code, string yaml, string err) = Cli.Run([.. Gpu, "--viommu", "--device", "gpu1:16MiB", "--emit-scenario"]);
        Assert.True(code == 0, err);
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-plan-{Environment.ProcessId}-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        try
        {
            (int runCode, string runOut, string runErr) = Cli.Run("run", path, "--report", "-q");

            Assert.True(runCode == 0, runOut + runErr);
            Assert.Contains("container 2: DMA mappings peak 6", runOut, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Plan_DescriptionFileWithOptionOverride_UsesBoth()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-vm-{Environment.ProcessId}-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, """
            vm:
              name: desk
              machine: pc
              memory: 8GiB
              backing: hugetlb-1g
              devices:
                - { name: gpu0, bars: [16MiB, 256MiB] }
                - { name: vgpu0, mdev: true, pinned: 32MiB }
            host: { iommu: amd-vi, dma_entry_limit: 1000 }
            """);
        try
        {
            (int code, string output, string err) = Cli.Run("plan", path, "--memory", "4GiB");

            Assert.True(code == 0, err);
            Assert.Contains("plan desk: pc, 4 GiB RAM (hugetlb-1g), 2 device(s)", output, StringComparison.Ordinal);
            Assert.Contains("host amd-vi", output, StringComparison.Ordinal);
            Assert.Contains("against dma_entry_limit 1000", output, StringComparison.Ordinal);
            Assert.DoesNotContain("MODEL MEASURED", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Plan_MalformedDescription_ExitsTwoAtTheLine()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-vm-{Environment.ProcessId}-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "vm:\n  memory: 4GiB\n  machine: q99\n");
        try
        {
            (int code, string output, string err) = Cli.Run("plan", path);

            Assert.Equal(2, code);
            Assert.Empty(output);
            Assert.Contains($"{path}:3:12: vm.machine: unknown value 'q99'", err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(new[] { "plan", "--memory", "lots", "--device", "g:1MiB" }, "--memory: ")]
    [InlineData(new[] { "plan", "--memory", "4GiB" }, "the VM has no VFIO device")]
    [InlineData(new[] { "plan", "--device", "g:1MiB" }, "describe the VM")]
    [InlineData(new[] { "plan", "--memory", "4GiB", "--device", "g:1MiB", "--emit-scenario", "--json" }, "--emit-scenario prints the scenario")]
    [InlineData(new[] { "plan", "--memory", "4GiB", "--device", "g" }, "--device: 'g' is not NAME:BAR")]
    [InlineData(new[] { "plan", "--memory", "4GiB", "--mdev", "v:1MiB", "--virtio-mem", "1GiB:2MiB" }, "--virtio-mem: '1GiB:2MiB' is not SIZE:BLOCK:PLUGGED")]
    public void Plan_BadInput_ExitsTwoWithTheReason(string[] args, string reason)
    {
        (int code, string output, string err) = Cli.Run(args);

        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Contains(reason, err, StringComparison.Ordinal);
    }

    [Fact]
    public void PlanAndRun_Html_WriteOneSelfContainedPage()
    {
        string plan = Path.Combine(Path.GetTempPath(), $"vfiolab-plan-{Environment.ProcessId}-{Guid.NewGuid():N}.html");
        string run = Path.Combine(Path.GetTempPath(), $"vfiolab-run-{Environment.ProcessId}-{Guid.NewGuid():N}.html");
        try
        {
            (int planCode, _, string planErr) = Cli.Run([.. Gpu, "--html", plan]);
            (int runCode, _, string runErr) = Cli.Run("run", "p2p-gpus-nic", "-q", "--html", run);

            Assert.True(planCode == 0, planErr);
            Assert.True(runCode == 0, runErr);
            foreach (string page in new[] { File.ReadAllText(plan), File.ReadAllText(run) })
            {
                Assert.StartsWith("<!DOCTYPE html>", page, StringComparison.Ordinal);
                Assert.Contains("class=\"iova-map\"", page, StringComparison.Ordinal);
                Assert.DoesNotContain("http://", page, StringComparison.Ordinal);
                Assert.DoesNotContain("https://", page, StringComparison.Ordinal);
            }
            Assert.Contains("<section class=\"plan\">", File.ReadAllText(plan), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(plan);
            File.Delete(run);
        }
    }

    [Fact]
    public void Run_HtmlWithoutAFile_IsRefused()
    {
        (int code, _, string err) = Cli.Run("run", "--html", "-");

        Assert.Equal(2, code);
        Assert.Contains("--html needs a file name", err, StringComparison.Ordinal);
    }
}
