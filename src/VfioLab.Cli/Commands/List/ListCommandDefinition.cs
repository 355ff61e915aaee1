using System.CommandLine;

namespace VfioLab.Cli.Commands.List;

/// <summary>Arguments of <c>vfiolab list</c>: an optional filter.</summary>
internal static class ListCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var filter = new Argument<string?>("filter")
        {
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "TEXT",
            Description = "Only the built-ins whose name contains TEXT (exit 2 when none does).",
        };
        OptionLikeArguments.Refuse(filter, pathsAllowed: false);
        var command = new Command("list", "List the built-in scenarios with their one-line descriptions, the default first.") { filter };
        command.SetAction(parse => new ListCommand(console).Execute(parse.GetValue(filter)));
        return command;
    }
}
