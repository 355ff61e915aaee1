using System.Text;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Scenarios.Planning;

/// <summary>Reads a VM description (docs/planning.md) into a <see cref="VmPlan"/>, with the scenario format's value
/// syntax and its located errors; a plan that parses is then checked by <see cref="Planner.Validate"/>, whose
/// problems are located at the <c>vm:</c> map.</summary>
internal static class VmPlanReader
{
    private static readonly Dictionary<string, MachineType> Machines = new(StringComparer.Ordinal)
    {
        ["q35"] = MachineType.Q35,
        ["pc"] = MachineType.Pc,
        ["virt"] = MachineType.Virt,
    };

    public static readonly Dictionary<string, RamBacking> Backings = new(StringComparer.Ordinal)
    {
        ["4k"] = RamBacking.Anonymous,
        ["thp"] = RamBacking.Thp,
        ["hugetlb-2m"] = RamBacking.Hugetlb2M,
        ["hugetlb-1g"] = RamBacking.Hugetlb1G,
        ["memfd"] = RamBacking.Memfd,
    };

    public static VmPlan ReadFile(string path)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(File.ReadAllBytes(path)).TrimStart('\uFEFF');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or DecoderFallbackException)
        {
            return ScenarioThrowHelper.ThrowParse<VmPlan>(new SourceLocation(path, 1, 1), $"cannot read the VM description: {e.Message}");
        }
        return Read(text, path);
    }

    public static VmPlan Read(string text, string file)
    {
        ScenarioNode root = YamlTreeLoader.Load(text, file);
        var top = new MapReader(root, "plan", ["vm", "host"]);
        var vm = new MapReader(top.Required("vm"), "vm", ["name", "machine", "memory", "backing", "viommu", "devices", "virtio_mem"]);
        var plan = new VmPlan
        {
            Name = vm.Optional("name") is { } n ? NodeRead.NonEmpty(n, "vm.name") : Path.GetFileNameWithoutExtension(file),
            Machine = vm.Optional("machine") is { } m ? NodeRead.Choice(m, "vm.machine", Machines) : MachineType.Q35,
            RamBytes = NodeRead.Size(vm.Required("memory"), "vm.memory"),
            Backing = vm.Optional("backing") is { } b ? NodeRead.Choice(b, "vm.backing", Backings) : RamBacking.Thp,
            VIommu = vm.Optional("viommu") is { } v && NodeRead.Bool(v, "vm.viommu"),
            Devices = [.. NodeRead.List(vm.Optional("devices"), "vm.devices").Select(Device)],
            VirtioMem = vm.Optional("virtio_mem") is { } vmem ? VirtioMem(vmem) : null,
        };
        if (top.Optional("host") is { } hostNode)
        {
            var host = new MapReader(hostNode, "host", ["iommu", "page_size", "kernel", "dma_entry_limit"]);
            plan = plan with
            {
                HostIommu = host.Optional("iommu") is { } i ? NodeRead.Word(i, "host.iommu", ["vt-d", "amd-vi", "smmu-v3"]) : plan.Machine == MachineType.Virt ? "smmu-v3" : "vt-d",
                HostPageSize = host.Optional("page_size") is { } p ? NodeRead.Size(p, "host.page_size") : plan.HostPageSize,
                Kernel = host.Optional("kernel") is { } k ? NodeRead.Word(k, "host.kernel", Lab.KernelProfiles.All) : plan.Kernel,
                DmaEntryLimit = host.Optional("dma_entry_limit") is { } d ? NodeRead.Size(d, "host.dma_entry_limit") : plan.DmaEntryLimit,
            };
        }
        else if (plan.Machine == MachineType.Virt)
        {
            plan = plan with { HostIommu = "smmu-v3" };
        }
        IReadOnlyList<string> errors = Planner.Validate(plan);
        return errors.Count == 0 ? plan : ScenarioThrowHelper.ThrowParse<VmPlan>(vm.Location, string.Join("; ", errors));
    }

    private static PlannedDevice Device(ScenarioNode node, int index)
    {
        string what = $"vm.devices[{index}]";
        var d = new MapReader(node, what, ["name", "bars", "mdev", "pinned"]);
        bool mdev = d.Optional("mdev") is { } m && NodeRead.Bool(m, $"{what}.mdev");
        return new PlannedDevice(
            NodeRead.NonEmpty(d.Required("name"), $"{what}.name"),
            [.. NodeRead.List(d.Optional("bars"), $"{what}.bars").Select((b, i) => NodeRead.Size(b, $"{what}.bars[{i}]"))],
            mdev,
            d.Optional("pinned") is { } p ? NodeRead.Size(p, $"{what}.pinned") : 0);
    }

    private static VirtioMemPlan VirtioMem(ScenarioNode node)
    {
        var v = new MapReader(node, "vm.virtio_mem", ["size", "block", "plugged"]);
        ulong size = NodeRead.Size(v.Required("size"), "vm.virtio_mem.size");
        return new VirtioMemPlan(size,
            v.Optional("block") is { } b ? NodeRead.Size(b, "vm.virtio_mem.block") : 2UL << 20,
            v.Optional("plugged") is { } p ? NodeRead.Size(p, "vm.virtio_mem.plugged") : size);
    }
}
