namespace VfioLab.Cli;

/// <summary>Entry point of the <c>vfiolab</c> command.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        RunProcessGc.EnterFor(args);
        return CliApplication.Run(args, CliConsole.FromProcess());
    }
}
