using System.Globalization;
using System.Numerics;

namespace VfioLab.Scenarios.Planning;

/// <summary>
/// Sizes a VM for VFIO (<c>vfiolab plan</c>, docs/planning.md): lays out what QEMU's memory listener maps for the VM
/// (<see cref="VmPlan"/>), derives by rule the RLIMIT_MEMLOCK, the DMA entries per container against
/// <c>dma_entry_limit</c>, and the IOPTEs and page-table memory per IOMMU domain, then runs the same map sequence
/// as a scenario on the model and reports both, with libvirt's formula beside them.
/// </summary>
/// <example>
/// <code>
/// VmPlanReport report = Planner.Plan(new VmPlan { RamBytes = 16UL &lt;&lt; 30, Devices = [new("gpu0", [16UL &lt;&lt; 20, 32UL &lt;&lt; 30])] });
/// ulong memlock = report.MemlockNeededBytes;      // what RLIMIT_MEMLOCK must allow
/// </code>
/// </example>
public static class Planner
{
    /// <summary>Everything wrong with <paramref name="plan"/>, one sentence each; empty when it can be planned.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="plan"/> is null.</exception>
    public static IReadOnlyList<string> Validate(VmPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var errors = new List<string>();
        ulong unit = plan.Backing switch
        {
            RamBacking.Hugetlb1G => 1UL << 30,
            RamBacking.Hugetlb2M or RamBacking.Thp => 2UL << 20,
            _ => plan.HostPageSize,
        };
        if (plan.HostPageSize is not (4096 or 16384 or 65536))
        {
            errors.Add($"host page size 0x{plan.HostPageSize:x} is not 4 KiB, 16 KiB or 64 KiB");
        }
        if (plan.RamBytes == 0 || plan.RamBytes % Math.Max(unit, 1) != 0)
        {
            errors.Add($"guest RAM 0x{plan.RamBytes:x} is not a positive multiple of the backing's page (0x{unit:x})");
        }
        if (plan.Machine == MachineType.Virt ? plan.HostIommu != "smmu-v3" : plan.HostIommu is not ("vt-d" or "amd-vi"))
        {
            errors.Add($"host IOMMU '{plan.HostIommu}' does not go with machine {plan.Machine.ToString().ToLowerInvariant()} (q35/pc: vt-d or amd-vi; virt: smmu-v3)");
        }
        if (!Lab.KernelProfiles.All.Contains(plan.Kernel, StringComparer.Ordinal))
        {
            errors.Add($"unknown kernel profile '{plan.Kernel}' (known: {string.Join(", ", Lab.KernelProfiles.All)})");
        }
        if (plan.DmaEntryLimit is 0 or > uint.MaxValue)
        {
            errors.Add($"dma_entry_limit {plan.DmaEntryLimit} is not between 1 and {uint.MaxValue}");
        }
        if (plan.Devices.Count == 0)
        {
            errors.Add("the VM has no VFIO device: nothing is pinned or mapped, there is nothing to plan");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (PlannedDevice d in plan.Devices)
        {
            if (!names.Add(d.Name) || d.Name.Length == 0 || !d.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                errors.Add($"device name '{d.Name}' is empty, used twice, or not letters, digits, '-' and '_'");
            }
            if (d.Mediated ? d.BarSizes.Count != 0 : d.BarSizes.Count is 0 or > 3)
            {
                errors.Add($"device {d.Name}: {(d.Mediated ? "a mediated device has no BAR the VMM maps" : "a passthrough device has 1 to 3 memory BARs")}");
            }
            foreach (ulong bar in d.BarSizes.Where(b => !BitOperations.IsPow2(b) || b < plan.HostPageSize))
            {
                errors.Add($"device {d.Name}: BAR size 0x{bar:x} is not a power of two of at least a page");
            }
            if (d.PinnedBytes % plan.HostPageSize != 0 || d.PinnedBytes > plan.RamBytes || (!d.Mediated && d.PinnedBytes != 0))
            {
                errors.Add($"device {d.Name}: pinned 0x{d.PinnedBytes:x} must be whole pages of guest RAM, and only a mediated device pins");
            }
        }
        if (plan.VirtioMem is { } v && (!BitOperations.IsPow2(v.BlockBytes) || v.BlockBytes < (2UL << 20) || v.BlockBytes < unit
            || v.RegionBytes == 0 || v.RegionBytes % v.BlockBytes != 0 || v.PluggedBytes % v.BlockBytes != 0 || v.PluggedBytes > v.RegionBytes))
        {
            errors.Add("virtio-mem: the block is a power of two of at least 2 MiB and of the backing's page; region and plugged are multiples of it, plugged at most the region");
        }
        return errors;
    }

    /// <summary>The scenario of the plan's map sequence (what <c>vfiolab plan --emit-scenario</c> prints): a v1
    /// scenario that, run, builds the host and makes every mapping and pin the plan counts.</summary>
    /// <exception cref="ArgumentException">The plan is not valid (<see cref="Validate"/>).</exception>
    public static string EmitScenario(VmPlan plan) => ScenarioEmitter.Emit(Layout(plan));

    /// <summary>Plans the VM and runs its map sequence on the model.</summary>
    /// <param name="plan">The VM.</param>
    /// <param name="observe">Given the prepared run before it starts, returns a reporter to watch it (an
    /// an HTML report recorder), or null.</param>
    /// <exception cref="ArgumentException">The plan is not valid (<see cref="Validate"/>).</exception>
    public static VmPlanReport Plan(VmPlan plan, Func<PreparedScenario, IScenarioReporter?>? observe = null)
    {
        PlanLayout layout = Layout(plan);
        string yaml = ScenarioEmitter.Emit(layout);
        ScenarioDocument doc;
        try
        {
            doc = ScenarioDocument.Parse(yaml, $"<plan>/{plan.Name}.yaml");
        }
        catch (ScenarioParseException e)
        {
            // Only the size of the file can refuse it (a scenario holds at most 1,000,000 written YAML nodes, about
            // 90,000 MAP_DMA steps): the rules still answer, unmeasured.
            return PlanRules.Report(layout, yaml, null, $"the model did not run the plan's scenario: {e.Reason}");
        }
        // The invariants are checked once, by the scenario's last step; after every step they would cost a walk of
        // every mapping per mapping made.
        PreparedScenario prepared = ScenarioRunner.Prepare(doc, new RunOptions { CheckInvariants = false, Sizing = true });
        ScenarioOutcome outcome = prepared.Execute(observe?.Invoke(prepared));
        return PlanRules.Report(layout, yaml, outcome, null);
    }

    private static PlanLayout Layout(VmPlan plan)
    {
        IReadOnlyList<string> errors = Validate(plan);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(plan));
        }
        return new PlanLayout(plan);
    }

    internal static string Bytes(ulong bytes) => SizingReport.Bytes(bytes);

    internal static string Hex(ulong value) => string.Create(CultureInfo.InvariantCulture, $"0x{value:x}");
}
