namespace VfioLab.Cli;

/// <summary>Entry point of the <c>vfiolab</c> command.</summary>
internal static class Program
{
    private static int Main(string[] args) => CliApplication.Run(args, CliConsole.FromProcess());
}
