using VfioLab.Cli.Commands.Fuzz;
using VfioLab.Cli.Commands.List;
using VfioLab.Cli.Commands.Probe;
using VfioLab.Cli.Commands.Run;

namespace VfioLab.Cli;

/// <summary>The <c>vfiolab</c> command: picks the verb, parses its options, runs it, maps the outcome
/// to an exit code. Holds no model logic.</summary>
internal static class CliApplication
{
    private static readonly Dictionary<string, IReadOnlyDictionary<string, bool>> Verbs = new(StringComparer.Ordinal)
    {
        ["run"] = RunCommandDefinition.Options,
        ["list"] = ListCommandDefinition.Options,
        ["fuzz"] = FuzzCommandDefinition.Options,
        ["probe"] = ProbeCommandDefinition.Options,
        ["help"] = new Dictionary<string, bool>(),
    };

    /// <summary>Runs the command line; returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            PrintUsage(stdout);
            return args.Length == 0 ? ExitCodes.UsageOrInputError : ExitCodes.Success;
        }
        string? error = CommandLine.TryParse(args, v => Verbs.GetValueOrDefault(v), out CommandLine? line);
        if (error is not null)
        {
            stderr.WriteLine($"vfiolab: {error}");
            PrintUsage(stderr);
            return ExitCodes.UsageOrInputError;
        }
        try
        {
            return line!.Verb switch
            {
                "run" => new RunCommand(stdout, stderr).Execute(line),
                "list" => new ListCommand(stdout).Execute(line),
                "fuzz" => new FuzzCommand(stdout, stderr).Execute(line),
                "probe" => new ProbeCommand(stdout, stderr).Execute(line),
                _ => PrintUsageOk(stdout),
            };
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"vfiolab: internal error (a bug in the model): {e}");
            return ExitCodes.InternalError;
        }
    }

    private static int PrintUsageOk(TextWriter w)
    {
        PrintUsage(w);
        return ExitCodes.Success;
    }

    private static void PrintUsage(TextWriter w)
    {
        w.WriteLine("usage: vfiolab <command> [options]");
        w.WriteLine();
        w.WriteLine("commands:");
        w.WriteLine("  run [FILE|NAME]   run a scenario file, or a built-in scenario by name (default: the built-in default)");
        w.WriteLine("      --trace FILE  write every system call and internal event as JSON lines");
        w.WriteLine("      --no-check    do not run the invariant checker after every step (on by default)");
        w.WriteLine("      --quiet       print only failures and the summary");
        w.WriteLine("      --report      end with a sizing report: peaks of locked_vm, DMA mappings, IOPTEs and IOMMU page-table memory");
        w.WriteLine("  list              list the built-in scenarios");
        w.WriteLine("  fuzz              run the robustness campaigns (differential, ioctl, scenario files); exit 1 on a violation");
        w.WriteLine("      --seconds N   time budget (default 30)      --rounds N   a fixed number of rounds instead");
        w.WriteLine("      --seed S      first round's seed (default 1; round r uses S + r)");
        w.WriteLine("      --campaign C  differential, ioctl or scenario (default: all)   --profile P  seeds or linux-6.18 (default: both)");
        w.WriteLine("      --out DIR     where failing cases are written as scenario files (default fuzz-failures)");
        w.WriteLine("  probe             what a VFIO user finds on this machine's kernel (/dev/vfio), through the typed client;");
        w.WriteLine("                    exit 1 when there is no VFIO here");
        w.WriteLine("      --scenario S  probe the simulated host of scenario file or built-in S instead (no steps run)");
        w.WriteLine("      --process P   with --scenario: the process to probe as (default: the first)");
        w.WriteLine("  help              this text");
    }
}
