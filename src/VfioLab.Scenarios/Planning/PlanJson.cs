using System.Text.Json;

namespace VfioLab.Scenarios.Planning;

/// <summary>The JSON form of a <see cref="VmPlanReport"/> (docs/schemas/plan-output.schema.json).</summary>
internal static class PlanJson
{
    public static void Write(Utf8JsonWriter w, VmPlanReport report, ulong? memlockBytes, ulong? dmaEntryLimit)
    {
        VmPlan p = report.Plan;
        w.WriteStartObject();
        w.WriteStartObject("vm");
        w.WriteString("name", p.Name);
        w.WriteString("machine", p.Machine.ToString().ToLowerInvariant());
        w.WriteNumber("ram_bytes", p.RamBytes);
        w.WriteString("backing", ScenarioEmitter.BackingName(p.Backing));
        w.WriteBoolean("viommu", p.VIommu);
        w.WriteNumber("devices", p.Devices.Count);
        w.WriteString("host_iommu", p.HostIommu);
        w.WriteNumber("host_page_size", p.HostPageSize);
        w.WriteString("kernel", p.Kernel);
        w.WriteNumber("dma_entry_limit", p.DmaEntryLimit);
        w.WriteEndObject();
        w.WriteNumber("memlock_needed_bytes", report.MemlockNeededBytes);
        w.WriteNumber("dma_entries_needed", report.DmaEntriesNeeded);
        w.WriteStartArray("mappings");
        foreach (PlannedMapping m in report.Mappings)
        {
            w.WriteStartObject();
            w.WriteNumber("container", m.Container);
            w.WriteString("iova", Planner.Hex(m.Iova));
            w.WriteString("size", Planner.Hex(m.Size));
            w.WriteString("kind", m.Kind);
            w.WriteString("label", m.Label);
            w.WriteBoolean("charged", m.Charged);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("figures");
        foreach (PlanFigure f in report.Figures)
        {
            w.WriteStartObject();
            w.WriteString("subject", f.Subject);
            w.WriteString("quantity", f.Quantity);
            w.WriteNumber("needed", f.Needed);
            if (f.Measured is { } m)
            {
                w.WriteNumber("measured", m);
            }
            else
            {
                w.WriteNull("measured");
            }
            if (f.Limit is { } l)
            {
                w.WriteNumber("limit", l);
            }
            w.WriteBoolean("agrees", f.Agrees);
            w.WriteString("rule", f.Rule);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("libvirt");
        w.WriteNumber("limit_bytes", report.Libvirt.LimitBytes);
        w.WriteString("formula", report.Libvirt.Formula);
        w.WriteNumber("margin_bytes", report.Libvirt.MarginBytes);
        w.WriteString("verdict", report.Libvirt.Verdict);
        w.WriteEndObject();
        w.WriteStartObject("model");
        w.WriteBoolean("passed", report.ModelPassed);
        w.WriteBoolean("agrees", report.ModelAgrees);
        w.WriteStartArray("problems");
        foreach (string s in report.ModelProblems)
        {
            w.WriteStringValue(s);
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("limits");
        if (memlockBytes is { } ml)
        {
            w.WriteNumber("memlock_bytes", ml);
        }
        if (dmaEntryLimit is { } dl)
        {
            w.WriteNumber("dma_entry_limit", dl);
        }
        w.WriteStartArray("shortfalls");
        foreach (string s in report.Shortfalls(memlockBytes, dmaEntryLimit))
        {
            w.WriteStringValue(s);
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
