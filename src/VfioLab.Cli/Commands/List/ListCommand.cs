using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.List;

/// <summary><c>vfiolab list [TEXT]</c>: the built-in scenarios (those whose name contains TEXT), the default first,
/// as <c>name: description</c>.</summary>
internal sealed class ListCommand(CliConsole console)
{
    public int Execute(string? filter)
    {
        string[] names = [.. BuiltInScenarios.Names.Where(n => filter is null || n.Contains(filter, StringComparison.Ordinal))];
        if (names.Length == 0)
        {
            console.Error.WriteLine($"vfiolab list: no built-in scenario's name contains '{filter}'; 'vfiolab list' shows them all");
            return ExitCodes.UsageOrInputError;
        }
        ConsoleStyle style = console.OutStyle;
        foreach (string name in names)
        {
            string mark = name == BuiltInScenarios.DefaultName ? " (default)" : string.Empty;
            console.Out.WriteLine($"{style.Strong(name)}{mark}: {BuiltInScenarios.DescriptionOf(name)}");
        }
        return ExitCodes.Success;
    }
}
