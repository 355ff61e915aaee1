using VfioLab.Scenarios.Running;

namespace VfioLab.Cli.Commands.List;

/// <summary><c>vfiolab list</c>: the built-in scenarios, the default first.</summary>
internal sealed class ListCommand(TextWriter stdout)
{
    public int Execute(CommandLine line)
    {
        _ = line;
        foreach (string name in BuiltInScenarios.Names)
        {
            string mark = name == BuiltInScenarios.DefaultName ? " (default)" : string.Empty;
            stdout.WriteLine($"{name}{mark}: {BuiltInScenarios.DescriptionOf(name)}");
        }
        return ExitCodes.Success;
    }
}
