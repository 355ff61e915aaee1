using System.Globalization;
using System.Text;
using VfioLab.Scenarios.Planning;
using VfioLab.Scenarios.Reports;
using static System.Net.WebUtility;

namespace VfioLab.Scenarios;

/// <summary>
/// One self-contained HTML page about scenario runs and plans (<c>vfiolab run --html</c>, <c>vfiolab plan --html</c>;
/// docs/report.md): per run the IOVA map of each container over time (mappings, reserved regions, the aperture, BARs
/// mapped for peer-to-peer), <c>locked_vm</c> per process over the steps against its limit, DMA entries per container
/// against <c>dma_entry_limit</c>, IOPTEs by page size per domain, invariant violations on a timeline, and the step
/// list with outcomes and reasons; per plan (first) its numbers with their rules. Inline CSS, SVG and a few lines of script;
/// nothing is fetched. Everything a scenario or a description controls is HTML-escaped.
/// </summary>
public sealed class HtmlReport
{
    /// <summary>Steps listed in full before the list keeps only the failing ones.</summary>
    public const int MaxListedSteps = 2000;

    private readonly List<object> _sections = [];

    /// <summary>A report titled <paramref name="title"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="title"/> is null.</exception>
    public HtmlReport(string title)
    {
        ArgumentNullException.ThrowIfNull(title);
        Title = title;
    }

    /// <summary>The page's title.</summary>
    public string Title { get; }

    /// <summary>A reporter that records <paramref name="prepared"/>'s run into this report (pass it to
    /// <see cref="PreparedScenario.Execute"/>, alone or beside another reporter); sections appear in the order recorded.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="prepared"/> is null.</exception>
    public IScenarioReporter Record(PreparedScenario prepared)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        var recorder = new HtmlRunRecorder(prepared);
        _sections.Add(recorder);
        return recorder;
    }

    /// <summary>Adds a plan's numbers, rules and libvirt comparison as a section.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="plan"/> is null.</exception>
    public void Add(VmPlanReport plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        _sections.Add(plan);
    }

    /// <summary>Writes the page.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void Write(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">")
            .Append(CultureInfo.InvariantCulture, $"<title>{HtmlEncode(Title)}</title><style>{HtmlReportStyle.Css}</style></head><body>")
            .Append(CultureInfo.InvariantCulture, $"<h1>{HtmlEncode(Title)}</h1>");
        foreach (VmPlanReport plan in _sections.OfType<VmPlanReport>())
        {
            HtmlReportSections.Plan(h, plan);
        }
        int index = 0;
        foreach (HtmlRunRecorder run in _sections.OfType<HtmlRunRecorder>())
        {
            HtmlReportSections.Run(h, run, index++);
        }
        h.Append("<script>").Append(HtmlReportStyle.Script).Append("</script></body></html>\n");
        writer.Write(h.ToString());
    }
}
