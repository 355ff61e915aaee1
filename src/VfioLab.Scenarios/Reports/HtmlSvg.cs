using System.Globalization;
using System.Text;
using static System.Net.WebUtility;

namespace VfioLab.Scenarios.Reports;

/// <summary>The report's pictures as inline SVG: a line chart of a value over the steps against its limit, an
/// IOVA map over time (a row per snapshot, an ordinal IOVA axis so that a 4 KiB mapping beside a 1 TiB one stays
/// visible), a timeline of violations. Every text from a file goes through <c>HtmlEncode</c>.</summary>
internal static class HtmlSvg
{
    private const int Width = 760;

    public static void LineChart(StringBuilder h, string id, string title, IReadOnlyList<(string Name, HtmlSeries Series)> lines, int steps, Func<ulong, string> format)
    {
        const int height = 180;
        const int left = 90;
        ulong max = 1;
        foreach ((_, HtmlSeries s) in lines)
        {
            max = Math.Max(max, s.Points.Count == 0 ? 0 : s.Points.Max(p => p.Value));
            if (s.Limit is { } l && l < ulong.MaxValue / 2)
            {
                max = Math.Max(max, l);
            }
        }
        double X(int step) => left + ((Width - left - 10) * (steps <= 1 ? 0 : step / (double)(steps - 1)));
        double Y(ulong v) => height - 20 - ((height - 40) * (v / (double)max));
        h.Append(CultureInfo.InvariantCulture, $"<figure id=\"{id}\"><figcaption>{HtmlEncode(title)}</figcaption><svg class=\"chart\" viewBox=\"0 0 {Width} {height}\" role=\"img\">");
        h.Append(CultureInfo.InvariantCulture, $"<text x=\"4\" y=\"24\" class=\"axis\">{HtmlEncode(format(max))}</text><text x=\"4\" y=\"{height - 20}\" class=\"axis\">0</text>");
        h.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{height - 20}\" x2=\"{Width - 10}\" y2=\"{height - 20}\" class=\"frame\"/>");
        h.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{height - 4}\" class=\"axis\">step 1</text><text x=\"{Width - 70}\" y=\"{height - 4}\" class=\"axis\">step {steps}</text>");
        int colour = 0;
        foreach ((string name, HtmlSeries s) in lines)
        {
            string points = string.Join(' ', s.Points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.Step):0.#},{Y(p.Value):0.#}")));
            h.Append(CultureInfo.InvariantCulture, $"<polyline class=\"series c{colour % 6}\" points=\"{points}\"><title>{HtmlEncode(name)}: peak {HtmlEncode(format(s.Points.Count == 0 ? 0 : s.Points.Max(p => p.Value)))}</title></polyline>");
            if (s.Limit is { } limit && limit < ulong.MaxValue / 2)
            {
                h.Append(CultureInfo.InvariantCulture, $"<line class=\"limit c{colour % 6}\" x1=\"{left}\" y1=\"{Y(limit):0.#}\" x2=\"{Width - 10}\" y2=\"{Y(limit):0.#}\"><title>{HtmlEncode(name)}: limit {HtmlEncode(format(limit))}</title></line>");
            }
            colour++;
        }
        h.Append("</svg><ul class=\"legend\">");
        colour = 0;
        foreach ((string name, HtmlSeries s) in lines)
        {
            ulong peak = s.Points.Count == 0 ? 0 : s.Points.Max(p => p.Value);
            string limit = s.Limit is { } l && l < ulong.MaxValue / 2 ? format(l) : "none";
            h.Append(CultureInfo.InvariantCulture, $"<li><span class=\"swatch c{colour++ % 6}\"></span>{HtmlEncode(name)}: peak {HtmlEncode(format(peak))}, limit {HtmlEncode(limit)}</li>");
        }
        h.Append("</ul></figure>");
    }

    public static void IovaMap(StringBuilder h, int container, IReadOnlyList<HtmlMapSnapshot> snapshots, HtmlRunRecorder run)
    {
        // The axis: every boundary any snapshot, reserved region or the aperture has, each gap an equal width.
        var edges = new SortedSet<ulong> { run.Aperture.Start, Plus1(run.Aperture.Last) };
        foreach (HtmlMapSnapshot s in snapshots)
        {
            foreach (HtmlBand b in s.Bands)
            {
                edges.Add(b.Start);
                edges.Add(Plus1(b.Last));
            }
        }
        foreach ((ulong start, ulong last, _) in run.Reserved)
        {
            edges.Add(start);
            edges.Add(Plus1(last));
        }
        ulong[] axis = [.. edges];
        const int left = 60;
        const int row = 16;
        double gap = (Width - left - 10) / (double)Math.Max(1, axis.Length - 1);
        double X(ulong a) => left + (gap * Array.BinarySearch(axis, a));
        int height = 40 + (row * snapshots.Count);
        h.Append(CultureInfo.InvariantCulture, $"<figure class=\"iova-map\" data-container=\"{container}\"><figcaption>container {container}: IOVA map over time (a row per change; ordinal axis)</figcaption>");
        h.Append(CultureInfo.InvariantCulture, $"<svg class=\"map\" viewBox=\"0 0 {Width} {height}\" role=\"img\">");
        h.Append(CultureInfo.InvariantCulture, $"<rect class=\"aperture\" x=\"{left}\" y=\"4\" width=\"{X(Plus1(run.Aperture.Last)) - left:0.#}\" height=\"{height - 30}\"><title>aperture [0x{run.Aperture.Start:x}, 0x{run.Aperture.Last:x}]</title></rect>");
        foreach ((ulong start, ulong last, string kind) in run.Reserved)
        {
            h.Append(CultureInfo.InvariantCulture, $"<rect class=\"reserved\" x=\"{X(start):0.#}\" y=\"4\" width=\"{Math.Max(1, X(Plus1(last)) - X(start)):0.#}\" height=\"{height - 30}\"><title>reserved ({HtmlEncode(kind)}) [0x{start:x}, 0x{last:x}]</title></rect>");
        }
        for (int i = 0; i < snapshots.Count; i++)
        {
            double y = 8 + (i * row);
            h.Append(CultureInfo.InvariantCulture, $"<text x=\"2\" y=\"{y + 11:0.#}\" class=\"axis\">step {snapshots[i].Step + 1}</text>");
            foreach (HtmlBand b in snapshots[i].Bands)
            {
                h.Append(CultureInfo.InvariantCulture, $"<rect class=\"band {b.Kind}\" x=\"{X(b.Start):0.#}\" y=\"{y:0.#}\" width=\"{Math.Max(1, X(Plus1(b.Last)) - X(b.Start)):0.#}\" height=\"{row - 3}\"><title>[0x{b.Start:x}, 0x{b.Last:x}] {HtmlEncode(b.Label)}</title></rect>");
            }
        }
        for (int i = 0; i < axis.Length; i += Math.Max(1, axis.Length / 6))
        {
            h.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(axis[i]):0.#}\" y=\"{height - 8}\" class=\"axis\">0x{axis[i]:x}</text>");
        }
        h.Append("</svg><ul class=\"legend\"><li><span class=\"swatch ram\"></span>pinned memory</li><li><span class=\"swatch bar\"></span>device BAR (peer-to-peer)</li>"
            + "<li><span class=\"swatch reserved\"></span>reserved region</li><li><span class=\"swatch aperture\"></span>aperture</li></ul></figure>");
    }

    public static void Violations(StringBuilder h, IReadOnlyList<StepReport> steps, int total)
    {
        const int height = 50;
        h.Append(CultureInfo.InvariantCulture, $"<svg id=\"violation-timeline\" class=\"chart\" viewBox=\"0 0 {Width} {height}\" role=\"img\"><line x1=\"10\" y1=\"25\" x2=\"{Width - 10}\" y2=\"25\" class=\"frame\"/>");
        foreach (StepReport s in steps.Where(s => s.Violations.Count > 0 || !s.Passed))
        {
            double x = 10 + ((Width - 20) * (total <= 1 ? 0 : s.Index / (double)(total - 1)));
            string what = s.Violations.Count > 0 ? string.Join(", ", s.Violations.Select(v => v.Invariant)) : "missed its expectation";
            h.Append(CultureInfo.InvariantCulture, $"<circle class=\"{(s.Violations.Count > 0 ? "violation" : "failure")}\" cx=\"{x:0.#}\" cy=\"25\" r=\"6\"><title>step {s.Index + 1}: {HtmlEncode(what)}</title></circle>");
        }
        h.Append("</svg>");
    }

    private static ulong Plus1(ulong last) => last == ulong.MaxValue ? last : last + 1;
}
