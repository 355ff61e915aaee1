namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab conform</c> before and around the boot: what it refuses (exit 2), a scenario the rig cannot
/// realise (refused with the reason, exit 1), and a guest that returns nothing (an error per scenario, exit 1). The
/// boots themselves run in CI (conformance/conform.sh).</summary>
public sealed class ConformCommandTests
{
    private const string Scenario = """
        vfiolab: 1
        name: one
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: edu, address: "0000:00:10.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
        """;

    [Fact]
    public void AKernelTheRigDoesNotBoot_IsExit2()
    {
        using var dir = new TempDirectory();
        (int code, _, string err) = Cli.Run("conform", dir.Write("a.yaml", Scenario), "--kernel", "5.10", "--rig", FakeRig(dir, "exit 0"));
        Assert.Equal(2, code);
        Assert.Contains("the rig boots 6.1 and 6.12", err, StringComparison.Ordinal);
    }

    [Fact]
    public void VirtioOn61_IsExit2WithTheReason()
    {
        using var dir = new TempDirectory();
        (int code, _, string err) = Cli.Run("conform", dir.Write("a.yaml", Scenario), "--kernel", "6.1", "--iommu", "virtio", "--rig", FakeRig(dir, "exit 0"));
        Assert.Equal(2, code);
        Assert.Contains("CONFIG_VIRTIO_IOMMU", err, StringComparison.Ordinal);
    }

    [Fact]
    public void NoRig_IsExit2()
    {
        using var dir = new TempDirectory();
        (int code, _, string err) = Cli.Run("conform", dir.Write("a.yaml", Scenario), "--kernel", "6.12", "--rig", dir.Path);
        Assert.Equal(2, code);
        Assert.Contains("no conformance rig found", err, StringComparison.Ordinal);
    }

    [Fact]
    public void AMalformedScenario_IsExit2_AndNothingBoots()
    {
        using var dir = new TempDirectory();
        string marker = Path.Combine(dir.Path, "booted");
        (int code, _, string err) = Cli.Run("conform", dir.Write("a.yaml", "vfiolab: 1\nsteps: [ { nope: {} } ]\n"), "--kernel", "6.12",
            "--rig", FakeRig(dir, $"touch '{marker}'"));
        Assert.Equal(2, code);
        Assert.Contains("a.yaml", err, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void AScenarioTheRigCannotRealise_IsRefusedWithTheReason_Exit1()
    {
        using var dir = new TempDirectory();
        string spapr = Scenario.Replace("iommu: vt-d", "iommu: spapr-tce", StringComparison.Ordinal);
        (int code, string output, _) = Cli.Run("conform", dir.Write("a.yaml", spapr), "--kernel", "6.12", "--rig", FakeRig(dir, "exit 0"));
        Assert.Equal(1, code);
        Assert.Contains("refused: sPAPR", output, StringComparison.Ordinal);
        Assert.Contains("1 refused", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AGuestThatReturnsNothing_IsAnErrorPerScenario_Exit1()
    {
        using var dir = new TempDirectory();
        (int code, string output, _) = Cli.Run("conform", dir.Write("a.yaml", Scenario), "--kernel", "6.12", "--json", "--rig",
            FakeRig(dir, "echo 'rig: guest did not boot' >&2; exit 125"));
        Assert.Equal(1, code);
        Assert.Contains("no result from the guest (boot.sh exit 125: rig: guest did not boot)", output, StringComparison.Ordinal);
        Assert.Contains("\"errors\": 1", output, StringComparison.Ordinal);
    }

    /// <summary>A rig directory whose boot.sh runs <paramref name="body"/>.</summary>
    private static string FakeRig(TempDirectory dir, string body)
    {
        string rig = Path.Combine(dir.Path, "rig");
        Directory.CreateDirectory(rig);
        string boot = Path.Combine(rig, "boot.sh");
        File.WriteAllText(boot, $"#!/bin/sh\n{body}\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(boot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return rig;
    }
}
