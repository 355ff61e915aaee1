using VfioLab.Scenarios;
using VfioLab.Tests.Cli;
using CliRunner = VfioLab.Tests.Cli.Cli;

namespace VfioLab.Tests.Scenarios.Import;

/// <summary>
/// Each trace excerpt of Data/qemu-traces (public QEMU reports, SOURCES.md) imported by <c>vfiolab import
/// qemu-trace</c> and the scenario it writes run by the scenario runner: the model's answer to every replayed call,
/// the differences from what QEMU got (printed and written as <c># differs:</c>), and a run that passes. Then the
/// command's refusals: a malformed line or option (exit 2, nothing written, an existing file untouched).
/// </summary>
public sealed class ImportEndToEndTests
{
    private static string Data(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Scenarios", "Import", "Data", "qemu-traces", name);
        Assert.True(File.Exists(path), $"trace excerpt {path} is missing from the test output (tests/VfioLab.Tests/VfioLab.Tests.csproj copies Data/)");
        return path;
    }

    /// <summary>Imports <paramref name="trace"/> with <paramref name="options"/>, runs the scenario; returns what
    /// the import printed, the scenario's text and the run.</summary>
    private static (string Printed, string Yaml, ScenarioOutcome Run) ImportAndRun(string trace, params string[] options)
    {
        using var dir = new TempDirectory();
        string output = Path.Combine(dir.Path, "replay.yaml");
        (int code, string printed, string err) = CliRunner.Run(["import", "qemu-trace", Data(trace), "-o", output, .. options]);
        Assert.True(code == 0, err);
        Assert.Equal(string.Empty, err);
        string yaml = File.ReadAllText(output);
        ScenarioOutcome run = ScenarioRunner.Prepare(ScenarioDocument.Load(output), new RunOptions()).Execute();
        Assert.True(run.Passed, string.Join('\n', run.Steps.SelectMany(s => s.Problems)));
        Assert.Equal([output], Directory.GetFiles(dir.Path));
        return (printed, yaml, run);
    }

    private static string[] Answers(ScenarioOutcome run) =>
        [.. run.Steps.Where(s => s.Kind is "map_dma" or "unmap_dma").Select(s => $"{s.Kind} {s.Errno ?? "ok"}")];

    [Fact]
    public void Boot439_EveryRamSectionMapsAsQemuDid_SkipsReplayNothing()
    {
        (string printed, string yaml, ScenarioOutcome run) = ImportAndRun("libvfio-user-439-boot.log");

        Assert.Equal(["map_dma ok", "map_dma ok", "map_dma ok", "map_dma ok"], Answers(run));
        Assert.EndsWith("replay.yaml: 4 DMA call(s) replayed, 0 where the model's answer differs from QEMU's\n", printed.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.DoesNotContain("\n  # differs:", yaml.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("  - mmap: { size: 3071MiB, at: 0x7fcaa7f00000, as: mem1 }", yaml, StringComparison.Ordinal);
        Assert.Contains(":9:25: vfio_listener_region_add_skip [0xfee00000, +0x100000): skipped by the listener, nothing mapped", yaml, StringComparison.Ordinal);
        Assert.Contains("  - map_dma: { fd: container, iova: 0x100000, vaddr: 0x7fcaa7f00000, size: 0xbff00000, flags: [READ, WRITE] }", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Boot439_DmaEntryLimitThree_TheFourthSectionIsENOSPCWhereQemuGotOk()
    {
        (string printed, string yaml, ScenarioOutcome run) = ImportAndRun("libvfio-user-439-boot.log", "--dma-entry-limit", "3");

        Assert.Equal(["map_dma ok", "map_dma ok", "map_dma ok", "map_dma ENOSPC"], Answers(run));
        Assert.Contains($"{Data("libvfio-user-439-boot.log")}:6:25: map_dma iova 0x100000 size 0xbff00000 vaddr 0x7fcaa7f00000: QEMU got ok, the model answers ENOSPC", printed, StringComparison.Ordinal);
        Assert.Contains("  # differs: QEMU got ok, the model answers ENOSPC\n  - map_dma: { fd: container, iova: 0x100000, vaddr: 0x7fcaa7f00000, size: 0xbff00000, flags: [READ, WRITE], expect: ENOSPC }", yaml.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Fact]
    public void PamChurn544_EachReAddAfterItsDelMapsAndEachDelUnmapsWhatWasAdded()
    {
        (_, _, ScenarioOutcome run) = ImportAndRun("libvfio-user-544-pam-churn.log");

        Assert.Equal(13, Answers(run).Length);
        Assert.All(Answers(run), a => Assert.EndsWith(" ok", a, StringComparison.Ordinal));
        ulong[] unmapped = [.. run.Steps.Where(s => s.Kind == "unmap_dma").Select(s => Assert.IsType<StepResult>(s.Result).TryGet("size", out ResultValue? v) ? v.Unsigned : 0)];
        Assert.Equal([0x7ff40000UL, 0x7ff00000UL, 0x7ff10000UL, 0x7ff40000UL, 0x80000000UL, 0x7ff40000UL], unmapped);
    }

    [Fact]
    public void Proxmox1353_On48BitVtD_MapsWhatQemuCouldNotAndTheRetriesAreOverlappingReAdds()
    {
        (string printed, string yaml, ScenarioOutcome run) = ImportAndRun("proxmox-1353-journal.log");

        Assert.Equal(["map_dma ok", "map_dma ok", "map_dma EEXIST", "map_dma EEXIST"], Answers(run));
        Assert.Contains("replay.yaml: 4 DMA call(s) replayed, 4 where the model's answer differs from QEMU's", printed, StringComparison.Ordinal);
        Assert.Contains($"{Data("proxmox-1353-journal.log")}:5:42: map_dma iova 0x380010000000 size 0x2000000 vaddr 0x771a6ce00000: QEMU got EINVAL, the model answers EEXIST", printed, StringComparison.Ordinal);
        Assert.Contains("# differs: QEMU got EINVAL, the model answers ok", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Proxmox1353_On39BitIommu_EveryMapIsEINVALAsQemuGot()
    {
        (string printed, string yaml, ScenarioOutcome run) = ImportAndRun("proxmox-1353-journal.log", "--aperture-bits", "39");

        Assert.Equal(["map_dma EINVAL", "map_dma EINVAL", "map_dma EINVAL", "map_dma EINVAL"], Answers(run));
        Assert.Contains("4 DMA call(s) replayed, 0 where the model's answer differs from QEMU's", printed, StringComparison.Ordinal);
        Assert.Contains("  aperture: { start: 0, last: 0x7fffffffff }", yaml, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], "map_dma ok", 1)]
    [InlineData(new[] { "--aperture-bits", "39" }, "map_dma EINVAL", 0)]
    public void Rtx5070Ti_TheRenamedErrorReportReplays_AgreeingOnlyWithA39BitIommu(string[] options, string answer, int differences)
    {
        (string printed, _, ScenarioOutcome run) = ImportAndRun("reddit-vfio-rtx5070ti.log", options);

        Assert.Equal([answer], Answers(run));
        Assert.Contains($"1 DMA call(s) replayed, {differences} where", printed, StringComparison.Ordinal);
    }

    [Fact]
    public void VirtioWin573_EFAULTOnSharedMemoryIsNotReproducedByAnonymousMemory()
    {
        (string printed, string yaml, ScenarioOutcome run) = ImportAndRun("virtio-win-573-efault.log");

        Assert.Equal(["map_dma ok"], Answers(run));
        Assert.Contains($"{Data("virtio-win-573-efault.log")}:2:229: map_dma iova 0x100000000 size 0x180000000 vaddr 0x7f6a47fff000: QEMU got EFAULT, the model answers ok", printed, StringComparison.Ordinal);
        Assert.Contains("  memory: 7GiB", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_MalformedLine_ExitsTwoLocatedAndWritesNothing()
    {
        using var dir = new TempDirectory();
        string log = dir.Write("bad.log", "noise\nvfio_listener_region_add_ram region_add [ram] 0xc0000 - zz [0x7f00]\n");
        string existing = dir.Write("replay.yaml", "kept\n");

        (int code, string output, string err) = CliRunner.Run("import", "qemu-trace", log, "-o", existing);

        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"{log}:2:57: expected iova_end as a 0x hex number, found 'zz'\n", err.ReplaceLineEndings("\n"));
        Assert.Equal("kept\n", File.ReadAllText(existing));
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length);
    }

    [Fact]
    public void Import_BadOptions_ExitTwoWithEveryError()
    {
        using var dir = new TempDirectory();
        string output = Path.Combine(dir.Path, "replay.yaml");

        (int code, _, string err) = CliRunner.Run("import", "qemu-trace", Data("libvfio-user-439-boot.log"), "-o", output,
            "--iommu", "spapr-tce", "--memory", "lots", "--dma-entry-limit", "-1", "--device", "gpu0");

        Assert.Equal(2, code);
        Assert.Equal(
            "vfiolab import qemu-trace: --memory: expected a size or address (an integer, 0x hex, or a number with KiB, MiB, GiB or TiB), got 'lots'\n"
            + "vfiolab import qemu-trace: --dma-entry-limit: '-1' is not a count from 0 to 4294967295\n",
            err.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(output));

        (code, _, err) = CliRunner.Run("import", "qemu-trace", Data("libvfio-user-439-boot.log"), "-o", output, "--iommu", "spapr-tce", "--device", "gpu0");

        Assert.Equal(2, code);
        Assert.Equal(
            "vfiolab import qemu-trace: IOMMU 'spapr-tce' is not vt-d, amd-vi or smmu-v3 (the replay is type1's)\n"
            + "vfiolab import qemu-trace: device 'gpu0' is not a PCI address (0000:01:00.0)\n",
            err.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Import_ToStandardOutput_PrintsTheScenarioAndTheSummaryOnStandardError()
    {
        (int code, string output, string err) = CliRunner.Run("import", "qemu-trace", Data("virtio-win-573-efault.log"), "-o", "-");

        Assert.Equal(0, code);
        ScenarioDocument doc = ScenarioDocument.Parse(output, "stdout.yaml");
        Assert.Equal("qemu-trace-virtio-win-573-efault", doc.Name);
        Assert.StartsWith("-: 1 DMA call(s) replayed, 1 where", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_IntoAMissingDirectory_ExitsSeventyFourLeavingNothing()
    {
        using var dir = new TempDirectory();
        string output = Path.Combine(dir.Path, "no-such-dir", "replay.yaml");

        (int code, _, string err) = CliRunner.Run("import", "qemu-trace", Data("virtio-win-573-efault.log"), "-o", output);

        Assert.Equal(74, code);
        Assert.StartsWith($"vfiolab import qemu-trace: cannot write '{output}': ", err, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
