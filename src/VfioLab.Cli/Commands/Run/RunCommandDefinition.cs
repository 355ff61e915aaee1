using System.CommandLine;

namespace VfioLab.Cli.Commands.Run;

/// <summary>Arguments and options of <c>vfiolab run</c>, and the combinations it refuses.</summary>
internal static class RunCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var scenarios = new Argument<string[]>("scenario")
        {
            Arity = ArgumentArity.ZeroOrMore,
            HelpName = "FILE|DIR|NAME",
            Description = "Scenario files, directories (their *.yaml files in name order) or built-in names (vfiolab list); "
                + "default: the built-in " + Scenarios.BuiltInScenarios.DefaultName + ". Every file is parsed first: "
                + "if any is malformed, nothing runs (exit 2).",
        };
        OptionLikeArguments.Refuse(scenarios, pathsAllowed: true);
        scenarios.CompletionSources.Add(_ => Scenarios.BuiltInScenarios.Names.Select(n => new System.CommandLine.Completions.CompletionItem(n)));
        var trace = new Option<string>("--trace")
        {
            HelpName = "FILE",
            Description = "Write every system call and internal event as JSON lines (docs/schemas/trace-event.schema.json); - is standard output.",
        };
        var noCheck = new Option<bool>("--no-check") { Description = "Do not run the invariant checker after every step (it runs by default)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only failing steps and the summaries." };
        var verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "Also say why each expected error was refused: the kernel check and its values (failed steps always say it).",
        };
        var report = new Option<bool>("--report")
        {
            Description = "End each scenario with a sizing report: peaks of locked_vm, DMA mappings, IOPTEs and IOMMU page-table memory.",
        };
        var json = new Option<bool>("--json")
        {
            Description = "Write one JSON document on standard output (docs/schemas/run-output.schema.json) instead of the text report.",
        };
        var html = new Option<string>("--html")
        {
            HelpName = "FILE",
            Description = "Also write one self-contained HTML page: IOVA maps over time, locked_vm and DMA entries against their limits, IOPTEs, violations, steps.",
        };
        var junit = new Option<string>("--junit") { HelpName = "FILE", Description = "Also write a JUnit XML report: a testsuite per scenario, a testcase per step." };

        // Gone: the checker runs by default. Kept hidden so that old command lines get the reason, not "unknown option".
        var check = new Option<bool>("--check") { Hidden = true };

        var command = new Command("run", "Run scenario files, directories of them, or built-in scenarios.\n"
            + "Exit 0 when every step met its expectation; 1 when one did not or an invariant broke; 2 when a file is malformed (then nothing runs).")
        {
            scenarios, trace, noCheck, quiet, verbose, report, json, junit, html, check,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(check) is { Implicit: false })
            {
                result.AddError("--check is gone: the invariant checker runs after every step by default (--no-check turns it off)");
            }
            bool isJson = result.GetValue(json);
            if (result.GetValue(quiet) && result.GetValue(verbose))
            {
                result.AddError("--quiet and --verbose contradict each other");
            }
            if (isJson && result.GetValue(verbose))
            {
                result.AddError("--verbose applies to the text report; --json carries every refusal anyway");
            }
            if (isJson && result.GetValue(quiet))
            {
                result.AddError("--quiet applies to the text report; --json prints no text report");
            }
            if (isJson && result.GetValue(trace) == "-")
            {
                result.AddError("--json and --trace - both want standard output; write the trace to a file");
            }
            if (result.GetValue(trace) is "")
            {
                result.AddError("--trace needs a file name (or - for standard output)");
            }
            if (result.GetValue(html) is "" or "-")
            {
                result.AddError("--html needs a file name");
            }
            if (result.GetValue(junit) is "" or "-")
            {
                result.AddError("--junit needs a file name");
            }
        });
        command.SetAction(parse =>
        {
            var settings = new RunSettings(
                parse.GetValue(scenarios) ?? [],
                parse.GetValue(trace),
                Check: !parse.GetValue(noCheck),
                Quiet: parse.GetValue(quiet),
                Report: parse.GetValue(report),
                Json: parse.GetValue(json),
                JUnitPath: parse.GetValue(junit))
            {
                HtmlPath = parse.GetValue(html),
                Verbose = parse.GetValue(verbose),
            };
            return new RunCommand(console).Execute(settings);
        });
        return command;
    }
}
