using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Reports;

/// <summary>The HTML report as text (its browser test is tests/VfioLab.Report.Tests): everything a scenario
/// controls is escaped, nothing is fetched, and each part is there.</summary>
public sealed class HtmlReportTests
{
    [Fact]
    public void Write_HostileScenarioText_IsEscapedEverywhere()
    {
        const string text = """
            vfiolab: 1
            name: "x</title><script>alert(1)</script>"
            description: "<img src=x onerror=alert(2)> & \"quoted\""
            host: { memory: 1GiB }
            devices:
              - { name: nic, address: "0000:03:00.0", group: 3, bars: [ { index: 0, size: 1MiB } ] }
            processes:
              - { name: "q<e>mu", memlock: 64MiB }
            steps:
              - open: { path: /dev/vfio/vfio, as: c }
              - open: { path: /dev/vfio/3, as: g }
              - group_set_container: { fd: g, container: c }
              - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
              - mmap: { size: 2MiB, as: ram }
              - map_dma: { fd: c, iova: 0xfee00000, vaddr: ram, size: 2MiB }
            """;
        PreparedScenario prepared = ScenarioRunner.Prepare(ScenarioDocument.Parse(text, "<b>evil</b>.yaml"), new RunOptions());
        var report = new HtmlReport("t<i>tle</i>");
        ScenarioOutcome outcome = prepared.Execute(report.Record(prepared));
        var html = new StringWriter();

        report.Write(html);

        string page = html.ToString();
        Assert.False(outcome.Passed);
        Assert.DoesNotContain("<script>alert", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<img", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<b>evil", page, StringComparison.Ordinal);
        Assert.DoesNotContain("q<e>mu", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<i>tle", page, StringComparison.Ordinal);
        Assert.Contains("x&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;", page, StringComparison.Ordinal);
        Assert.Contains("&amp; &quot;quoted&quot;", page, StringComparison.Ordinal);
        Assert.Contains("<tr class=\"failed\">", page, StringComparison.Ordinal);
        Assert.Contains("EINVAL", page, StringComparison.Ordinal);
        Assert.Contains("class=\"reserved\"", page, StringComparison.Ordinal); // the MSI window the map hit
        Assert.Equal(1, CountOf(page, "<script>")); // the report's own filter script, and nothing else
        Assert.DoesNotContain("src=\"http", page, StringComparison.Ordinal);
    }

    private static int CountOf(string text, string what)
    {
        int n = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + 1, StringComparison.Ordinal))
        {
            n++;
        }
        return n;
    }
}
