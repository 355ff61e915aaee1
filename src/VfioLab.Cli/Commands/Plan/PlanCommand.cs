using System.Text.Json;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Planning;

namespace VfioLab.Cli.Commands.Plan;

/// <summary>
/// <c>vfiolab plan [FILE] [options]</c>: reads the VM description and the options over it (any malformed part: every
/// error, exit 2, nothing run), then either prints the scenario of its map sequence (<c>--emit-scenario</c>) or plans
/// it — the text report or <c>--json</c>, and the HTML report when asked — and exits 1 when <c>--memlock</c> or
/// <c>--dma-entry-limit</c> is too small (each shortfall on standard error) or the model disagrees with a rule.
/// </summary>
internal sealed class PlanCommand(CliConsole console)
{
    public int Execute(PlanSettings settings)
    {
        var errors = new List<string>();
        VmPlan plan = new();
        if (settings.File is { } file)
        {
            try
            {
                plan = VmPlan.Load(file);
            }
            catch (ScenarioParseException e)
            {
                errors.Add(e.Message);
            }
        }
        plan = PlanOptionsReader.Apply(plan, settings, errors);
        ulong? memlock = settings.Memlock is { } m ? PlanOptionsReader.Size("--memlock", m, errors) : null;
        ulong? dmaLimit = settings.DmaEntryLimit is null ? null : plan.DmaEntryLimit;
        if (errors.Count == 0)
        {
            errors.AddRange(Planner.Validate(plan).Select(e => $"vfiolab plan: {e}"));
        }
        if (errors.Count > 0)
        {
            foreach (string e in errors)
            {
                console.Error.WriteLine(console.ErrorStyle.Fail(e));
            }
            return ExitCodes.UsageOrInputError;
        }
        if (settings.EmitScenario)
        {
            console.Out.Write(Planner.EmitScenario(plan));
            return ExitCodes.Success;
        }

        FileStream? htmlFile = null;
        if (settings.HtmlPath is { } path)
        {
            try
            {
                htmlFile = new FileStream(path, FileMode.Create, FileAccess.Write);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                console.Error.WriteLine(console.ErrorStyle.Fail($"vfiolab plan: cannot write '{path}': {e.Message}"));
                return ExitCodes.UsageOrInputError;
            }
        }
        HtmlReport? html = htmlFile is null ? null : new HtmlReport($"vfiolab plan {plan.Name}");
        VmPlanReport report = Planner.Plan(plan, html is null ? null : html.Record);
        if (html is not null)
        {
            html.Add(report);
            using var writer = new StreamWriter(htmlFile!, new System.Text.UTF8Encoding(false));
            html.Write(writer);
        }
        IReadOnlyList<string> shortfalls = report.Shortfalls(memlock, dmaLimit);
        int exit = ExitCodes.ForPlan(shortfalls.Count > 0 || !report.ModelAgrees);
        if (settings.Json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                report.WriteJson(w, memlock, dmaLimit);
            }
            console.Out.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
        else
        {
            report.Write(console.Out);
        }
        foreach (string s in shortfalls)
        {
            console.Error.WriteLine(console.ErrorStyle.Fail($"vfiolab plan: {s}"));
        }
        return exit;
    }
}
