using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab probe</c>: the typed client's view of a simulated host, or of this machine's kernel.</summary>
public sealed class ProbeCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApplication.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string WriteScenario(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-probe-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Probe_BuiltInScenario_ReportsIommuAndDevices()
    {
        (int code, string output, string err) = Run("probe", "--scenario", "p2p-gpus-nic");

        Assert.Equal(0, code);
        Assert.Equal(string.Empty, err);
        Assert.Contains("extensions: VFIO_TYPE1_IOMMU VFIO_TYPE1v2_IOMMU VFIO_UNMAP_ALL", output, StringComparison.Ordinal);
        Assert.Contains("group 1: viable", output, StringComparison.Ordinal);
        Assert.Contains("iommu: VFIO_TYPE1v2_IOMMU", output, StringComparison.Ordinal);
        Assert.Contains("usable IOVA: 0xfef00000-0xffffffffffff", output, StringComparison.Ordinal);
        Assert.Contains("device 0000:01:00.0: RESET|PCI, 9 regions, 5 irq types", output, StringComparison.Ordinal);
        Assert.Contains("region 2: size 0x10000000 READ|WRITE|MMAP", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_PowerHost_ReportsTheSpaprWindows()
    {
        (int code, string output, _) = Run("probe", "--scenario", "spapr-v2-ddw-prereg");

        Assert.Equal(0, code);
        Assert.Contains("extensions: VFIO_SPAPR_TCE_IOMMU VFIO_SPAPR_TCE_v2_IOMMU", output, StringComparison.Ordinal);
        Assert.Contains("iommu: VFIO_SPAPR_TCE_v2_IOMMU", output, StringComparison.Ordinal);
        Assert.Contains("32-bit window: 0x0 size 0x80000000", output, StringComparison.Ordinal);
        Assert.Contains("dynamic windows: 2, page sizes 4KiB 64KiB 16MiB, levels 5", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_GroupWithAHostDriver_ReportedNotViable()
    {
        string path = WriteScenario("""
            vfiolab: 1
            name: probe-host-driver
            host: { memory: 1GiB, iommu: smmu-v3 }
            devices:
              - { name: nic, address: "0000:03:00.0", driver: vfio-pci, group: 3 }
              - { name: disk, address: "0000:03:00.1", driver: host, group: 3 }
              - { name: gpu, address: "0000:01:00.0", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 64KiB } ] }
            processes:
              - { name: vmm, memlock: unlimited }
            steps: []
            """);
        try
        {
            (int code, string output, _) = Run("probe", "--scenario", path);
            Assert.Equal(0, code);
            Assert.Contains("group 3: not viable", output, StringComparison.Ordinal);
            Assert.Contains("group 1: viable", output, StringComparison.Ordinal);
            Assert.Contains("region 0: size 0x10000 READ|WRITE|MMAP", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Probe_UnknownProcess_ExitsTwoNamingTheProcesses()
    {
        (int code, _, string err) = Run("probe", "--scenario", "p2p-gpus-nic", "--process", "nobody");
        Assert.Equal(2, code);
        Assert.Contains("no process 'nobody'", err, StringComparison.Ordinal);
        Assert.Contains("qemu", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_ScenarioWithoutProcesses_ProbesAsMain()
    {
        string path = WriteScenario("""
            vfiolab: 1
            devices:
              - { name: nic, address: "0000:02:00.0", group: 2 }
            steps: []
            """);
        try
        {
            (int code, string output, string err) = Run("probe", "--scenario", path);
            Assert.Equal(0, code);
            Assert.Equal(string.Empty, err);
            Assert.Contains(", process main, pid ", output, StringComparison.Ordinal);
            Assert.Contains("group 2: viable", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Probe_MalformedScenario_ExitsTwoWithLocation()
    {
        string path = WriteScenario("vfiolab: 1\nhost: { memory: lots }\n");
        try
        {
            (int code, _, string err) = Run("probe", "--scenario", path);
            Assert.Equal(2, code);
            Assert.StartsWith($"{path}:2:", err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Probe_PositionalArgument_ExitsTwo()
    {
        Assert.Equal(2, Run("probe", "p2p-gpus-nic").Code);
    }

    [Fact]
    public void Probe_RealKernelWithoutVfio_ExitsOneAndSaysWhy()
    {
        if (File.Exists("/dev/vfio/vfio") || !OperatingSystem.IsLinux())
        {
            return; // this test is about a Linux machine without VFIO (CI's)
        }
        (int code, string output, _) = Run("probe");
        Assert.Equal(1, code);
        Assert.Contains("real kernel", output, StringComparison.Ordinal);
        Assert.Contains("no VFIO: open /dev/vfio/vfio: ENOENT (2)", output, StringComparison.Ordinal);
    }
}
