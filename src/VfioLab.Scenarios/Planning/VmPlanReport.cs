using System.Text.Json;

namespace VfioLab.Scenarios.Planning;

/// <summary>
/// What a VM needs (<see cref="Planner.Plan"/>): the map sequence per container, every number with its rule and the
/// model's measurement, libvirt's limit beside the need, and the scenario that was run. <see cref="Write"/> prints
/// it as <c>vfiolab plan</c> does, <see cref="WriteJson"/> as <c>vfiolab plan --json</c>
/// (docs/schemas/plan-output.schema.json).
/// </summary>
public sealed class VmPlanReport
{
    internal VmPlanReport(VmPlan plan, IReadOnlyList<PlannedMapping> mappings, IReadOnlyList<PlanFigure> figures, LibvirtComparison libvirt,
        string scenario, bool modelPassed, IReadOnlyList<string> modelProblems)
    {
        Plan = plan;
        Mappings = mappings;
        Figures = figures;
        Libvirt = libvirt;
        Scenario = scenario;
        ModelPassed = modelPassed;
        ModelProblems = modelProblems;
    }

    /// <summary>The VM planned.</summary>
    public VmPlan Plan { get; }

    /// <summary>Every MAP_DMA the VMM issues, container by container, in the order it issues them.</summary>
    public IReadOnlyList<PlannedMapping> Mappings { get; }

    /// <summary>Every number: locked memory, DMA entries per container, IOPTEs (in all and by page size) and page-table
    /// memory per domain.</summary>
    public IReadOnlyList<PlanFigure> Figures { get; }

    /// <summary>libvirt's RLIMIT_MEMLOCK for the VM against the need.</summary>
    public LibvirtComparison Libvirt { get; }

    /// <summary>The scenario run on the model (<see cref="Planner.EmitScenario"/>).</summary>
    public string Scenario { get; }

    /// <summary>Whether the model ran every step of the scenario as expected and its invariants held at the end (false
    /// when the scenario was too large to run: <see cref="ModelProblems"/> says so).</summary>
    public bool ModelPassed { get; }

    /// <summary>The model's failed steps, if any.</summary>
    public IReadOnlyList<string> ModelProblems { get; }

    /// <summary>Whether every rule's number is what the model measured and the model's run passed.</summary>
    public bool ModelAgrees => ModelPassed && Figures.All(f => f.Agrees);

    /// <summary>The RLIMIT_MEMLOCK the VMM needs, in bytes.</summary>
    public ulong MemlockNeededBytes => Figures.First(f => f.Quantity == "locked_vm_bytes").Needed;

    /// <summary>The most DMA mappings any one container needs (each container has its own <c>dma_entry_limit</c>).</summary>
    public ulong DmaEntriesNeeded => Figures.Where(f => f.Quantity == "dma_entries").Select(f => f.Needed).DefaultIfEmpty(0UL).Max();

    /// <summary>Why the given limits are too small, each with the amount missing; empty when they suffice.</summary>
    /// <param name="memlockBytes">RLIMIT_MEMLOCK of the VMM, or null not to judge it.</param>
    /// <param name="dmaEntryLimit">The host's <c>dma_entry_limit</c>, or null not to judge it.</param>
    public IReadOnlyList<string> Shortfalls(ulong? memlockBytes, ulong? dmaEntryLimit)
    {
        var found = new List<string>();
        if (memlockBytes is { } memlock && memlock < MemlockNeededBytes)
        {
            found.Add($"RLIMIT_MEMLOCK {Planner.Bytes(memlock)} is {Planner.Bytes(MemlockNeededBytes - memlock)} short of the {Planner.Bytes(MemlockNeededBytes)} the VM locks: MAP_DMA fails with ENOMEM (vfio_pin_pages_remote)");
        }
        if (dmaEntryLimit is { } limit)
        {
            foreach (PlanFigure f in Figures.Where(f => f.Quantity == "dma_entries" && f.Needed > limit))
            {
                found.Add($"{f.Subject}: dma_entry_limit {limit} is {f.Needed - limit} entries short of the {f.Needed} mappings it makes: MAP_DMA fails with ENOSPC");
            }
        }
        return found;
    }

    /// <summary>Writes the plan as text: the map sequence, each number with its rule (and the model's figure when it
    /// differs), libvirt's limit.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void Write(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        VmPlan p = Plan;
        writer.WriteLine($"plan {p.Name}: {p.Machine.ToString().ToLowerInvariant()}, {Planner.Bytes(p.RamBytes)} RAM ({ScenarioEmitter.BackingName(p.Backing)}), "
            + $"{p.Devices.Count} device(s), {(p.VIommu ? "vIOMMU" : "no vIOMMU")}, host {p.HostIommu} {SizingReport.PageSize(p.HostPageSize)} pages, kernel {p.Kernel}");
        foreach (IGrouping<int, PlannedMapping> c in Mappings.GroupBy(m => m.Container))
        {
            writer.WriteLine($"  container {c.Key}: {c.Count()} MAP_DMA call(s)");
            foreach (string line in Condense(c))
            {
                writer.WriteLine($"    {line}");
            }
        }
        foreach (PlanFigure f in Figures)
        {
            string value = f.Quantity.EndsWith("bytes", StringComparison.Ordinal) ? Planner.Bytes(f.Needed) : f.Needed.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string model = f.Measured is null ? string.Empty : f.Agrees ? " (model agrees)" : $" (MODEL MEASURED {f.Measured})";
            writer.WriteLine($"  {f.Subject} {f.Quantity}: {value}{model}");
            writer.WriteLine($"      rule: {f.Rule}");
        }
        writer.WriteLine($"  libvirt: {Libvirt.Formula}; {Libvirt.Verdict}");
        foreach (string problem in ModelProblems)
        {
            writer.WriteLine($"  model: {problem}");
        }
    }

    /// <summary>Writes the plan as one JSON object (docs/schemas/plan-output.schema.json); byte counts are numbers.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void WriteJson(Utf8JsonWriter writer, ulong? memlockBytes = null, ulong? dmaEntryLimit = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        PlanJson.Write(writer, this, memlockBytes, dmaEntryLimit);
    }

    /// <summary>Runs of mappings of one kind that follow each other (virtio-mem blocks) as one line each.</summary>
    private static IEnumerable<string> Condense(IEnumerable<PlannedMapping> mappings)
    {
        PlannedMapping? first = null;
        PlannedMapping? last = null;
        int count = 0;
        foreach (PlannedMapping m in mappings)
        {
            if (first is not null && m.Kind == "virtio-mem" && last!.Kind == "virtio-mem" && last.Iova + last.Size == m.Iova)
            {
                last = m;
                count++;
                continue;
            }
            if (first is not null)
            {
                yield return Line(first, last!, count);
            }
            first = last = m;
            count = 1;
        }
        if (first is not null)
        {
            yield return Line(first, last!, count);
        }
    }

    private static string Line(PlannedMapping first, PlannedMapping last, int count) => count == 1
        ? $"[{Planner.Hex(first.Iova)}, {Planner.Hex(first.Iova + first.Size - 1)}] {Planner.Bytes(first.Size)} {first.Label}{(first.Charged ? ", charged" : string.Empty)}"
        : $"[{Planner.Hex(first.Iova)}, {Planner.Hex(last.Iova + last.Size - 1)}] {count} x {Planner.Bytes(first.Size)} virtio-mem blocks{(first.Charged ? ", charged" : string.Empty)}";
}
