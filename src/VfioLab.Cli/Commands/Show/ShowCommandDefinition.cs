using System.CommandLine;
using System.CommandLine.Completions;
using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Show;

/// <summary>Arguments of <c>vfiolab show</c>: one built-in scenario's name.</summary>
internal static class ShowCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var name = new Argument<string>("name") { HelpName = "NAME", Description = "A built-in scenario (vfiolab list)." };
        OptionLikeArguments.Refuse(name, pathsAllowed: false);
        name.CompletionSources.Add(_ => BuiltInScenarios.Names.Select(n => new CompletionItem(n)));
        var command = new Command("show", "Print a built-in scenario's YAML (to read it, or to start a file of your own).") { name };
        command.SetAction(parse => new ShowCommand(console).Execute(parse.GetValue(name)!));
        return command;
    }
}
