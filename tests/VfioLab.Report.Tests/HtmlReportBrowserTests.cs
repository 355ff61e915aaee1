using Microsoft.Playwright;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Planning;

namespace VfioLab.Report.Tests;

/// <summary>
/// The HTML report (<c>vfiolab run --html</c>, <c>plan --html</c>) opened in headless Chromium through Playwright:
/// Debian's chromium at /usr/bin/chromium (<c>.ci/install-prereqs.sh</c> installs it; no browser is downloaded), the
/// page from disk with every network request refused. It must load with no console error and no script error, show
/// each of its parts, keep a hostile scenario's text as text, and its step filter must work. A full-page screenshot
/// goes to <c>out/report/report.png</c>, its top to <c>report-top.png</c> (docs/images/report.png is one such).
/// </summary>
public sealed class HtmlReportBrowserTests
{
    /// <summary>A scenario whose name, description and problems carry markup: the page must show it, never run it.</summary>
    private const string Hostile = """
        vfiolab: 1
        name: "hostile-<b>name</b>"
        description: "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> & friends"
        host: { memory: 1GiB }
        devices:
          - { name: nic, address: "0000:03:00.0", group: 3, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: qemu, memlock: 64MiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/3, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - mmap: { size: 2MiB, as: ram }
          - map_dma: { fd: c, iova: 0xfee00000, vaddr: ram, size: 2MiB, expect: ok }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 2MiB }
        """;

    [Fact]
    public async Task Report_OfRunsAndAPlan_LoadsCleanAndShowsEveryPart()
    {
        string chromium = Environment.GetEnvironmentVariable("VFIOLAB_CHROMIUM") ?? "/usr/bin/chromium";
        Assert.True(File.Exists(chromium),
            $"chromium is missing at {chromium}: run .ci/install-prereqs.sh (it installs Debian's chromium), or set VFIOLAB_CHROMIUM");

        string path = WriteReport();

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"],
        });
        IPage page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        var errors = new List<string>();
        var requests = new List<string>();
        var dialogs = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning")
            {
                errors.Add($"console {message.Type}: {message.Text}");
            }
        };
        page.PageError += (_, error) => errors.Add($"page error: {error}");
        page.Dialog += (_, dialog) => dialogs.Add(dialog.Message);
        await page.RouteAsync("**/*", async route =>
        {
            if (route.Request.Url.StartsWith("file:", StringComparison.Ordinal))
            {
                await route.ContinueAsync();
            }
            else
            {
                requests.Add(route.Request.Url);
                await route.AbortAsync();
            }
        });

        IResponse? response = await page.GotoAsync(new Uri(path).AbsoluteUri, new PageGotoOptions { WaitUntil = WaitUntilState.Load });
        Assert.NotNull(response);

        Assert.Empty(errors);
        Assert.Empty(requests);
        Assert.Empty(dialogs);
        Assert.Equal("vfiolab report test", await page.TitleAsync());
        // Three runs (the plan's, a built-in, the hostile one) and the plan's own section.
        Assert.Equal(3, await page.Locator("section.run").CountAsync());
        Assert.Equal(1, await page.Locator("section.plan").CountAsync());
        Assert.True(await page.Locator("figure.iova-map svg rect.band.ram").CountAsync() > 0);
        Assert.True(await page.Locator("figure.iova-map svg rect.band.bar").CountAsync() > 0, "the P2P BARs of p2p-gpus-nic are on the map");
        Assert.True(await page.Locator("figure.iova-map svg rect.reserved").CountAsync() > 0, "the MSI window is on the map");
        Assert.True(await page.Locator("figure.iova-map svg rect.aperture").CountAsync() > 0);
        Assert.True(await page.Locator("figure[id^=locked-vm-] polyline.series").CountAsync() >= 3, "each run charts locked_vm");
        Assert.True(await page.Locator("figure[id^=dma-entries-] line.limit").CountAsync() >= 3, "each run's DMA chart has its dma_entry_limit");
        Assert.True(await page.Locator("table.ioptes td").CountAsync() > 0);
        Assert.Equal(1, await page.Locator("svg#violation-timeline circle.failure").CountAsync());
        Assert.Contains("2M", await page.Locator("table.ioptes").First.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("libvirt", await page.Locator("section.plan").InnerTextAsync(), StringComparison.Ordinal);

        // The hostile scenario's markup is text on the page, and no script of it ran.
        ILocator hostile = page.Locator("section.run").Nth(2);
        Assert.Contains("<script>window.pwned = 1</script>", await hostile.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("hostile-<b>name</b>", await hostile.Locator("h2").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await hostile.Locator("h2 b").CountAsync());
        Assert.Equal("undefined", await page.EvaluateAsync<string>("typeof window.pwned"));

        // The failing step is listed with its reason; the filter hides the passing ones.
        ILocator steps = hostile.Locator("table.steps");
        Assert.Equal(1, await steps.Locator("tr.failed").CountAsync());
        Assert.Contains("EINVAL", await steps.Locator("tr.failed").InnerTextAsync(), StringComparison.Ordinal);
        Assert.True(await steps.Locator("tr.passed").First.IsVisibleAsync());
        await hostile.Locator("input.failed-filter").CheckAsync();
        Assert.False(await steps.Locator("tr.passed").First.IsVisibleAsync());
        Assert.True(await steps.Locator("tr.failed").IsVisibleAsync());
        await hostile.Locator("input.failed-filter").UncheckAsync();

        string shot = Path.Combine(RepositoryRoot(), "out", "report", "report.png");
        Directory.CreateDirectory(Path.GetDirectoryName(shot)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        Assert.True(new FileInfo(shot).Length > 10_000, $"the screenshot {shot} is empty");
        // The top of the page (the plan and the first run's maps and charts): what docs/images/report.png shows.
        await page.ScreenshotAsync(new PageScreenshotOptions
        {
            Path = Path.Combine(Path.GetDirectoryName(shot)!, "report-top.png"),
            FullPage = true,
            Clip = new Clip { X = 0, Y = 0, Width = 1200, Height = 2400 },
        });
        Assert.Empty(errors);
    }

    /// <summary>A report of a plan (two GPUs behind a vIOMMU), a built-in P2P scenario and the hostile scenario.</summary>
    private static string WriteReport()
    {
        var report = new HtmlReport("vfiolab report test");
        var plan = new VmPlan
        {
            Name = "two-gpus-viommu",
            RamBytes = 8UL << 30,
            Backing = RamBacking.Hugetlb1G,
            VIommu = true,
            Devices = [new PlannedDevice("gpu0", [16UL << 20, 8UL << 30]), new PlannedDevice("gpu1", [16UL << 20, 8UL << 30])],
        };
        VmPlanReport planned = Planner.Plan(plan, report.Record);
        Assert.True(planned.ModelAgrees, string.Join('\n', planned.ModelProblems));
        report.Add(planned);
        foreach (ScenarioDocument doc in new[] { BuiltInScenarios.Load("p2p-gpus-nic"), ScenarioDocument.Parse(Hostile, "hostile.yaml") })
        {
            PreparedScenario prepared = ScenarioRunner.Prepare(doc, new RunOptions());
            prepared.Execute(report.Record(prepared));
        }
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-report-{Environment.ProcessId}.html");
        using (var writer = new StreamWriter(path))
        {
            report.Write(writer);
        }
        return path;
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "VfioLab.slnx")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException($"no VfioLab.slnx above {AppContext.BaseDirectory}");
    }
}
