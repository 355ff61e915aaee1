using VfioLab.Scenarios.Planning;

namespace VfioLab.Cli.Commands.Plan;

/// <summary>Turns <c>plan</c>'s options into a <see cref="VmPlan"/> over the one the file describes (or the
/// defaults), collecting every malformed option.</summary>
internal static class PlanOptionsReader
{
    private static readonly Dictionary<string, MachineType> Machines = new(StringComparer.Ordinal)
    {
        ["q35"] = MachineType.Q35,
        ["pc"] = MachineType.Pc,
        ["virt"] = MachineType.Virt,
    };

    private static readonly Dictionary<string, RamBacking> Backings = new(StringComparer.Ordinal)
    {
        ["4k"] = RamBacking.Anonymous,
        ["thp"] = RamBacking.Thp,
        ["hugetlb-2m"] = RamBacking.Hugetlb2M,
        ["hugetlb-1g"] = RamBacking.Hugetlb1G,
        ["memfd"] = RamBacking.Memfd,
    };

    public static VmPlan Apply(VmPlan plan, PlanSettings s, List<string> errors)
    {
        if (s.Machine is { } m)
        {
            plan = Machines.TryGetValue(m, out MachineType machine)
                ? plan with { Machine = machine, HostIommu = s.HostIommu ?? (machine == MachineType.Virt ? "smmu-v3" : plan.HostIommu == "smmu-v3" ? "vt-d" : plan.HostIommu) }
                : Fail(plan, errors, $"--machine: '{m}' is not q35, pc or virt");
        }
        if (s.Memory is { } mem)
        {
            plan = plan with { RamBytes = Size("--memory", mem, errors) };
        }
        if (s.Backing is { } b)
        {
            plan = Backings.TryGetValue(b, out RamBacking backing) ? plan with { Backing = backing }
                : Fail(plan, errors, $"--backing: '{b}' is not one of {string.Join(", ", Backings.Keys)}");
        }
        if (s.Devices.Count > 0 || s.Mdevs.Count > 0)
        {
            plan = plan with { Devices = [.. s.Devices.Select(d => Device(d, errors)), .. s.Mdevs.Select(d => Mdev(d, errors))] };
        }
        if (s.VIommu)
        {
            plan = plan with { VIommu = true };
        }
        if (s.VirtioMem is { } v)
        {
            string[] parts = v.Split(':');
            plan = parts.Length == 3
                ? plan with { VirtioMem = new VirtioMemPlan(Size("--virtio-mem", parts[0], errors), Size("--virtio-mem", parts[1], errors), Size("--virtio-mem", parts[2], errors)) }
                : Fail(plan, errors, $"--virtio-mem: '{v}' is not SIZE:BLOCK:PLUGGED");
        }
        if (s.HostIommu is { } iommu)
        {
            plan = plan with { HostIommu = iommu };
        }
        if (s.HostPageSize is { } page)
        {
            plan = plan with { HostPageSize = Size("--host-page-size", page, errors) };
        }
        if (s.Kernel is { } kernel)
        {
            plan = plan with { Kernel = kernel };
        }
        if (s.DmaEntryLimit is { } limit)
        {
            plan = plan with { DmaEntryLimit = Size("--dma-entry-limit", limit, errors) };
        }
        return plan;
    }

    public static ulong Size(string option, string text, List<string> errors)
    {
        if (VmPlan.TryParseSize(text, out ulong value, out string? error))
        {
            return value;
        }
        errors.Add($"{option}: {error}");
        return 0;
    }

    private static PlannedDevice Device(string text, List<string> errors)
    {
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            errors.Add($"--device: '{text}' is not NAME:BAR[,BAR...]");
            return new PlannedDevice(text, []);
        }
        return new PlannedDevice(text[..colon], [.. text[(colon + 1)..].Split(',').Select(b => Size("--device", b, errors))]);
    }

    private static PlannedDevice Mdev(string text, List<string> errors)
    {
        string[] parts = text.Split(':');
        if (parts.Length != 2 || parts[0].Length == 0)
        {
            errors.Add($"--mdev: '{text}' is not NAME:PINNED");
            return new PlannedDevice(text, [], Mediated: true);
        }
        return new PlannedDevice(parts[0], [], Mediated: true, PinnedBytes: Size("--mdev", parts[1], errors));
    }

    private static VmPlan Fail(VmPlan plan, List<string> errors, string error)
    {
        errors.Add(error);
        return plan;
    }
}
