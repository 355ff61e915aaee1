using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Show;

/// <summary><c>vfiolab show NAME</c>: the YAML text of a built-in scenario, exactly as shipped.</summary>
internal sealed class ShowCommand(CliConsole console)
{
    public int Execute(string name)
    {
        if (!BuiltInScenarios.Exists(name))
        {
            console.Error.WriteLine($"vfiolab show: no built-in scenario '{name}'; built-ins: {string.Join(", ", BuiltInScenarios.Names)}");
            return ExitCodes.UsageOrInputError;
        }
        string text = BuiltInScenarios.GetText(name);
        console.Out.Write(text);
        if (!text.EndsWith('\n'))
        {
            console.Out.WriteLine();
        }
        return ExitCodes.Success;
    }
}
