using System.CommandLine;
using System.CommandLine.Invocation;
using VfioLab.Cli.Commands.Conform;
using VfioLab.Cli.Commands.Fuzz;
using VfioLab.Cli.Commands.List;
using VfioLab.Cli.Commands.Plan;
using VfioLab.Cli.Commands.Probe;
using VfioLab.Cli.Commands.Run;
using VfioLab.Cli.Commands.Show;

namespace VfioLab.Cli;

/// <summary>The <c>vfiolab</c> command on System.CommandLine: the root with <c>-h/--help</c> on every command and
/// <c>--version</c>, one subcommand per folder of <c>Commands/</c>. A malformed command line is exit 2 (the error, and
/// where to find the usage, on standard error); an exception out of a command is a bug, exit 70 with its stack.
/// Holds no model logic.</summary>
internal static class CliApplication
{
    /// <summary>Runs the command line with plain (redirected) streams; returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, new CliConsole(stdout, stderr));

    /// <summary>Runs the command line; returns the process exit code.</summary>
    public static int Run(string[] args, CliConsole console)
    {
        Command root = BuildRoot(console);
        ParseResult parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var invocation = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        if (parse.Action is ParseErrorAction)
        {
            return ReportErrors(parse, root, console);
        }
        try
        {
            return parse.Invoke(invocation);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            int code = ExitCodes.ForException(e);
            try
            {
                console.Error.WriteLine(code switch
                {
                    ExitCodes.InternalError => $"vfiolab: internal error (a bug in the model): {e}",
                    ExitCodes.OutputError => $"vfiolab: cannot write the output: {Printable.Escape(e.Message)}",
                    _ => Printable.Escape(e.Message),
                });
            }
            catch (Exception again) when (again is IOException or ObjectDisposedException)
            {
                // Standard error itself cannot be written: the exit code is all that is left.
            }
            return code;
        }
    }

    /// <summary>The command tree; commands write to <paramref name="console"/>.</summary>
    internal static Command BuildRoot(CliConsole console)
    {
        // A plain command rather than RootCommand, whose name is the executable's file name (VfioLab.Cli).
        var root = new Command("vfiolab", "An executable model of the Linux VFIO user API and its IOMMU backends.\n"
            + "Exit codes: 0 ok; 1 a step missed its expectation or an invariant broke; 2 the command line or a scenario is malformed "
            + "(nothing ran); 70 an internal error (a bug in the model); 74 an output could not be written.")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption { Action = new VersionAction() },
        };
        root.Subcommands.Add(RunCommandDefinition.Create(console));
        root.Subcommands.Add(ListCommandDefinition.Create(console));
        root.Subcommands.Add(ShowCommandDefinition.Create(console));
        root.Subcommands.Add(FuzzCommandDefinition.Create(console));
        root.Subcommands.Add(ProbeCommandDefinition.Create(console));
        root.Subcommands.Add(PlanCommandDefinition.Create(console));
        root.Subcommands.Add(Commands.Serve.ServeCommandDefinition.Create(console));
        root.Subcommands.Add(Commands.Ctl.CtlCommandDefinition.Create(console));
        root.Subcommands.Add(ConformCommandDefinition.Create(console));
        root.Subcommands.Add(ConformCommandDefinition.CreateGuest(console));
        return root;
    }

    private static int ReportErrors(ParseResult parse, Command root, CliConsole console)
    {
        Command command = parse.CommandResult.Command;
        if (ReferenceEquals(command, root) && parse.Tokens.Count == 0)
        {
            // Nothing at all: the usage, on standard error since nothing was done.
            root.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = console.Error, Error = console.Error });
            return ExitCodes.UsageOrInputError;
        }
        string path = ReferenceEquals(command, root) ? "vfiolab" : $"vfiolab {command.Name}";
        foreach (System.CommandLine.Parsing.ParseError error in parse.Errors)
        {
            console.Error.WriteLine(console.ErrorStyle.Fail($"{path}: {error.Message}"));
        }
        console.Error.WriteLine($"See '{path} --help'.");
        return ExitCodes.UsageOrInputError;
    }

    /// <summary><c>--version</c>: the informational version, on standard output.</summary>
    private sealed class VersionAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"vfiolab {CliVersion.Informational}");
            return ExitCodes.Success;
        }
    }
}
