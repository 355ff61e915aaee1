using System.Globalization;
using System.Text;
using VfioLab.Scenarios.Planning;
using static System.Net.WebUtility;

namespace VfioLab.Scenarios.Reports;

/// <summary>The sections of an <see cref="HtmlReport"/>: one per recorded run, one per plan.</summary>
internal static class HtmlReportSections
{
    public static void Run(StringBuilder h, HtmlRunRecorder run, int index)
    {
        ScenarioDocument doc = run.Document;
        ScenarioOutcome? outcome = run.Outcome;
        bool passed = outcome?.Passed ?? run.Steps.All(s => s.Passed);
        int total = Math.Max(run.Steps.Count, 1);
        h.Append(CultureInfo.InvariantCulture, $"<section class=\"run\" id=\"run-{index}\"><h2>scenario {HtmlEncode(doc.Name)}</h2>");
        h.Append(CultureInfo.InvariantCulture, $"<p>{HtmlEncode(doc.Description ?? string.Empty)} <span class=\"mono\">{HtmlEncode(doc.File)}</span></p>");
        h.Append(CultureInfo.InvariantCulture, $"<p class=\"{(passed ? "verdict-pass" : "verdict-fail")}\">{(passed ? "PASSED" : "FAILED")}: {run.Steps.Count(s => s.Passed)} of {run.Steps.Count} steps met their expectation, {run.Steps.Sum(s => s.Violations.Count)} unexpected invariant violation(s)</p>");

        h.Append("<h3>IOVA map of each container</h3>");
        if (run.Maps.Count == 0)
        {
            h.Append("<p>No type1 container held a backend.</p>");
        }
        foreach ((int container, List<HtmlMapSnapshot> snaps) in run.Maps)
        {
            HtmlSvg.IovaMap(h, container, snaps, run);
        }

        h.Append("<h3>Locked memory and DMA entries</h3>");
        HtmlSvg.LineChart(h, $"locked-vm-{index}", "locked_vm per process against RLIMIT_MEMLOCK",
            [.. run.LockedVm.Select(kv => (kv.Key, kv.Value))], total, SizingReport.Bytes);
        HtmlSvg.LineChart(h, $"dma-entries-{index}", "DMA mappings per container against dma_entry_limit",
            [.. run.DmaEntries.Select(kv => ($"container {kv.Key}", kv.Value))], total, v => v.ToString(CultureInfo.InvariantCulture));

        h.Append(CultureInfo.InvariantCulture, $"<h3>IOPTEs by page size</h3><table class=\"ioptes\" id=\"ioptes-{index}\"><tr><th>domain</th><th>at the end</th><th>at the peak</th></tr>");
        foreach (string domain in run.DomainOrder)
        {
            var samples = run.Ioptes[domain];
            var peak = samples.MaxBy(s => s.BySize.Aggregate(0UL, (a, kv) => a + kv.Value));
            h.Append(CultureInfo.InvariantCulture, $"<tr><td class=\"mono\">{HtmlEncode(domain)}</td><td>{Sizes(samples[^1].BySize)}</td><td>{Sizes(peak.BySize)} (step {peak.Step + 1})</td></tr>");
        }
        h.Append("</table>");

        h.Append("<h3>Invariant violations</h3>");
        HtmlSvg.Violations(h, run.Steps, total);
        var violations = run.Steps.SelectMany(s => s.Violations.Select(v => (s, v))).ToList();
        h.Append(violations.Count == 0 ? "<p>None unexpected.</p>" : "<ul class=\"violations\">");
        foreach ((StepReport s, StepViolation v) in violations)
        {
            h.Append(CultureInfo.InvariantCulture, $"<li>step {s.Index + 1} <span class=\"mono\">{HtmlEncode(s.Location.ToString())}</span>: <b>{HtmlEncode(v.Invariant)}</b> {HtmlEncode(v.Message)}</li>");
        }
        if (violations.Count > 0)
        {
            h.Append("</ul>");
        }

        string table = $"steps-{index}";
        h.Append(CultureInfo.InvariantCulture, $"<h3>Steps</h3><label><input type=\"checkbox\" class=\"failed-filter\" data-table=\"{table}\"> only failed steps</label>");
        h.Append(CultureInfo.InvariantCulture, $"<table class=\"steps\" id=\"{table}\"><tr><th>#</th><th>at</th><th>call</th><th>expect</th><th>returned</th><th>outcome</th><th>reasons</th></tr>");
        int listed = 0;
        foreach (StepReport s in run.Steps)
        {
            if (!s.Passed || listed < HtmlReport.MaxListedSteps)
            {
                listed++;
                // The refusal of an errno step (docs/refusals.md), unless a problem already says it.
                IEnumerable<string> why = s.Refusal is { } refusal && !s.Problems.Any(p => p.Contains(refusal.Reason, StringComparison.Ordinal))
                    ? [refusal.ToString()]
                    : [];
                string reasons = string.Join("<br>", s.Problems.Concat(why).Select(HtmlEncode));
                h.Append(CultureInfo.InvariantCulture, $"<tr class=\"{(s.Passed ? "passed" : "failed")}\"><td>{s.Index + 1}</td><td class=\"mono\">{HtmlEncode(s.Location.ToString())}</td><td class=\"mono\">{HtmlEncode(s.Description)}</td><td>{HtmlEncode(s.Expectation)}</td><td class=\"mono\">{HtmlEncode(s.Outcome)}</td><td class=\"outcome\">{(s.Passed ? "passed" : s.Result is null ? "error" : "failed")}</td><td>{reasons}</td></tr>");
            }
        }
        h.Append("</table>");
        if (listed < run.Steps.Count)
        {
            h.Append(CultureInfo.InvariantCulture, $"<p>{run.Steps.Count - listed} passing steps after the first {HtmlReport.MaxListedSteps} are not listed.</p>");
        }
        h.Append("</section>");
    }

    public static void Plan(StringBuilder h, VmPlanReport plan)
    {
        VmPlan p = plan.Plan;
        h.Append(CultureInfo.InvariantCulture, $"<section class=\"plan\"><h2>plan {HtmlEncode(p.Name)}</h2>");
        h.Append(CultureInfo.InvariantCulture, $"<p>{p.Machine.ToString().ToLowerInvariant()}, {HtmlEncode(SizingReport.Bytes(p.RamBytes))} RAM, {p.Devices.Count} device(s), {(p.VIommu ? "vIOMMU" : "no vIOMMU")}, host {HtmlEncode(p.HostIommu)}, kernel {HtmlEncode(p.Kernel)}</p>");
        h.Append(CultureInfo.InvariantCulture, $"<p class=\"{(plan.ModelAgrees ? "verdict-pass" : "verdict-fail")}\">RLIMIT_MEMLOCK needed: {HtmlEncode(SizingReport.Bytes(plan.MemlockNeededBytes))}; DMA entries needed: {plan.DmaEntriesNeeded}; the model {(plan.ModelAgrees ? "agrees with every rule" : "does not agree with every rule")}</p>");
        h.Append("<table class=\"figures\"><tr><th>subject</th><th>quantity</th><th>rule</th><th>model</th><th>limit</th><th>how</th></tr>");
        foreach (PlanFigure f in plan.Figures)
        {
            h.Append(CultureInfo.InvariantCulture, $"<tr class=\"{(f.Agrees ? "passed" : "failed")}\"><td>{HtmlEncode(f.Subject)}</td><td class=\"mono\">{HtmlEncode(f.Quantity)}</td><td>{f.Needed}</td><td>{(f.Measured is { } m ? m.ToString(CultureInfo.InvariantCulture) : "not run")}</td><td>{(f.Limit is { } l ? l.ToString(CultureInfo.InvariantCulture) : string.Empty)}</td><td>{HtmlEncode(f.Rule)}</td></tr>");
        }
        h.Append("</table>");
        h.Append(CultureInfo.InvariantCulture, $"<p class=\"libvirt\">libvirt: {HtmlEncode(plan.Libvirt.Formula)}; {HtmlEncode(plan.Libvirt.Verdict)}</p>");
        h.Append("</section>");
    }

    private static string Sizes(IReadOnlyList<KeyValuePair<ulong, ulong>> bySize) => bySize.Count == 0
        ? "none"
        : string.Join(", ", bySize.Select(kv => $"{SizingReport.PageSize(kv.Key)} &times; {kv.Value}"));
}
