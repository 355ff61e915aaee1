using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;
using VfioLab.Simulation;

namespace VfioLab.Tests.Client;

/// <summary>
/// A simulated host built from a scenario's host part, for driving the typed client: a GPU (group 1) and a NIC
/// (group 2) behind VT-d, a device bound to a host driver in group 3 (not viable), one process <c>vmm</c>.
/// </summary>
internal sealed class ClientHost
{
    public const ulong MiB = 1UL << 20;

    public ClientHost(string memlock = "unlimited", string kernel = "seeds")
    {
        string text = $$"""
            vfiolab: 1
            name: client
            host: { memory: 1GiB, iommu: vt-d, kernel: {{kernel}} }
            devices:
              - { name: gpu, address: "0000:01:00.0", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 16MiB } ] }
              - { name: nic, address: "0000:02:00.0", driver: vfio-pci, group: 2, bars: [ { index: 0, size: 1MiB } ] }
              - { name: nic2, address: "0000:03:00.0", driver: vfio-pci, group: 3 }
              - { name: disk, address: "0000:03:00.1", driver: host, group: 3 }
            processes:
              - { name: vmm, memlock: {{memlock}} }
            steps: []
            """;
        ScenarioDocument doc = ScenarioParser.Parse(text, "client.yaml");
        VfioLab.Lab.LabHost lab = ScenarioHostFactory.Build(doc);
        Host = lab.Simulated;
        Process = lab.Process("vmm").Process;
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    /// <summary>Anonymous read-write memory in the process.</summary>
    public ulong Mmap(ulong size)
    {
        long address = Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(address > 0, $"mmap answered {address}");
        return (ulong)address;
    }

    public DeviceDmaResult DmaWrite(string device, ulong iova, byte[] data) =>
        DeviceDma.Write(Host, Host.Devices[device], new VfioLab.Addressing.Iova(iova), data);

    public DeviceDmaResult DmaRead(string device, ulong iova, ulong size) =>
        DeviceDma.Read(Host, Host.Devices[device], new VfioLab.Addressing.Iova(iova), size);
}
