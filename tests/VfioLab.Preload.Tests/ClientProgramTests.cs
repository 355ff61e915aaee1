namespace VfioLab.Preload.Tests;

/// <summary>The example clients (examples/clients/) as plain programs, before any server is involved.</summary>
public sealed class ClientProgramTests
{
    public static TheoryData<string> Clients() => new() { "kernel-doc-flow", "dpdk-style-v1", "dirty-tracking" };

    [Theory]
    [MemberData(nameof(Clients))]
    public void Client_OnAHostWithoutTheDevice_ExitsOneNamingWhatIsMissing(string client)
    {
        NativeBuild.Ensure();
        var run = ProcessRun.Start(Path.Combine(RepoPaths.Build, "clients", client), ["0000:7f:1f.7"],
            new Dictionary<string, string?> { ["LD_PRELOAD"] = null, ["VFIOLAB_SOCKET"] = null });
        Assert.Equal(1, run.ExitCode);
        Assert.True(run.Stderr.Contains("/sys/bus/pci/devices/0000:7f:1f.7/iommu_group", StringComparison.Ordinal)
            || run.Stderr.Contains("/dev/vfio", StringComparison.Ordinal)
            || run.Stderr.Contains("container", StringComparison.Ordinal), run.Both);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public void Client_WithoutADeviceArgument_ExitsTwoWithUsage(string client)
    {
        NativeBuild.Ensure();
        var run = ProcessRun.Start(Path.Combine(RepoPaths.Build, "clients", client), []);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("usage:", run.Stderr, StringComparison.Ordinal);
    }
}
