using System.CommandLine;

namespace VfioLab.Cli.Commands.Probe;

/// <summary>Options of <c>vfiolab probe</c>.</summary>
internal static class ProbeCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var scenario = new Option<string>("--scenario")
        {
            HelpName = "FILE|NAME",
            Description = "Probe the simulated host a scenario file or built-in builds (no step runs) instead of this machine's kernel.",
        };
        var process = new Option<string>("--process")
        {
            HelpName = "NAME",
            Description = "With --scenario: the process to probe as (default: the scenario's first, main when it declares none).",
        };
        var command = new Command("probe", "Show what a VFIO user finds here through the typed client (exit 1: no VFIO).\n"
            + "API version, extensions, each group's viability, its IOMMU and each device's regions; with --scenario, on a simulated host.")
        {
            scenario, process,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(process) is not null && result.GetValue(scenario) is null)
            {
                result.AddError("--process applies only with --scenario");
            }
        });
        command.SetAction(parse => new ProbeCommand(console).Execute(parse.GetValue(scenario), parse.GetValue(process)));
        return command;
    }
}
