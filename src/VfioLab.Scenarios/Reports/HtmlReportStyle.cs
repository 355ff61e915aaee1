namespace VfioLab.Scenarios.Reports;

/// <summary>The report's inline style sheet and script (no external resource: the page is opened from disk and from
/// CI artifacts). The script only toggles the step list's filter.</summary>
internal static class HtmlReportStyle
{
    public const string Css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2733;background:#fff}
        h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccd;margin-top:2em}h3{font-size:1.05em}
        table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:2px 6px;text-align:left;vertical-align:top}
        th{background:#eef1f6}tr.failed td{background:#fde8e8}tr.passed td.outcome{color:#17663a}code,.mono{font-family:ui-monospace,monospace;font-size:12px}
        figure{margin:1em 0}figcaption{font-weight:600}svg{max-width:100%;height:auto;border:1px solid #dde}
        .axis{font-size:10px;fill:#556}.frame{stroke:#889;stroke-width:1}
        .series{fill:none;stroke-width:2}.limit{stroke-dasharray:6 4;stroke-width:1.5}
        .c0{stroke:#1f6feb;background:#1f6feb}.c1{stroke:#d1242f;background:#d1242f}.c2{stroke:#1a7f37;background:#1a7f37}
        .c3{stroke:#9a6700;background:#9a6700}.c4{stroke:#8250df;background:#8250df}.c5{stroke:#0a7a8f;background:#0a7a8f}
        .aperture{fill:#f3f6fb}.reserved{fill:#f7c6c6;opacity:.8}.band.ram{fill:#4c8bf5}.band.bar{fill:#f59f00}
        .swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
        .swatch.ram{background:#4c8bf5}.swatch.bar{background:#f59f00}.swatch.reserved{background:#f7c6c6}.swatch.aperture{background:#f3f6fb;border:1px solid #ccd}
        .legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1em}
        circle.violation{fill:#d1242f}circle.failure{fill:#9a6700}
        .verdict-pass{color:#17663a;font-weight:600}.verdict-fail{color:#d1242f;font-weight:600}
        table.only-failed tr.passed{display:none}
        """;

    public const string Script = """
        document.querySelectorAll('input.failed-filter').forEach(function (box) {
          box.addEventListener('change', function () {
            var table = document.getElementById(box.getAttribute('data-table'));
            if (table) { table.classList.toggle('only-failed', box.checked); }
          });
        });
        """;
}
