using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;

namespace VfioLab.Cli.Commands.Run;

/// <summary><c>vfiolab run [FILE|NAME]</c>: parse (nothing runs if the file is malformed), run every
/// step, print each step's outcome and a summary; exit 0 only when everything met its expectation.</summary>
internal sealed class RunCommand(TextWriter stdout, TextWriter stderr)
{
    public int Execute(CommandLine line)
    {
        if (line.Positional.Count > 1)
        {
            stderr.WriteLine("vfiolab run: at most one scenario file or name");
            return ExitCodes.UsageOrInputError;
        }
        ScenarioDocument doc;
        try
        {
            doc = Load(line.Positional.Count == 0 ? null : line.Positional[0]);
        }
        catch (ScenarioParseException e)
        {
            stderr.WriteLine(e.Message);
            return ExitCodes.UsageOrInputError;
        }
        var options = new RunOptions { CheckInvariants = !line.Has(RunCommandDefinition.NoCheck), Sizing = line.Has(RunCommandDefinition.Report) };
        StreamWriter? trace = null;
        try
        {
            string? tracePath = line.Value(RunCommandDefinition.Trace);
            if (tracePath is not null)
            {
                try
                {
                    trace = new StreamWriter(tracePath, append: false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
                {
                    stderr.WriteLine($"vfiolab run: cannot write trace file '{tracePath}': {e.Message}");
                    return ExitCodes.UsageOrInputError;
                }
            }
            var reporter = new ConsoleReporter(stdout, line.Has(RunCommandDefinition.Quiet));
            ScenarioOutcome outcome = ScenarioRunner.Run(doc, options, reporter, trace);
            return outcome.Passed ? ExitCodes.Success : ExitCodes.ScenarioFailed;
        }
        finally
        {
            trace?.Dispose();
        }
    }

    /// <summary>The built-in default, a built-in by name, or a file (a file of that name wins).</summary>
    internal static ScenarioDocument Load(string? fileOrName)
    {
        if (fileOrName is null)
        {
            return ScenarioParser.Parse(BuiltInScenarios.GetText(BuiltInScenarios.DefaultName), BuiltInScenarios.PathOf(BuiltInScenarios.DefaultName));
        }
        if (!File.Exists(fileOrName) && BuiltInScenarios.Exists(fileOrName))
        {
            return ScenarioParser.Parse(BuiltInScenarios.GetText(fileOrName), BuiltInScenarios.PathOf(fileOrName));
        }
        return ScenarioParser.ParseFile(fileOrName);
    }
}
