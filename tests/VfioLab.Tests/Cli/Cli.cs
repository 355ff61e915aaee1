using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>Runs the <c>vfiolab</c> command line in-process and captures what it wrote.</summary>
internal static class Cli
{
    /// <summary>Plain streams, as when redirected.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(args, terminal: false, noColor: false);

    /// <summary>Streams that claim to be a terminal (colour unless <paramref name="noColor"/>).</summary>
    public static (int Code, string Out, string Err) Run(string[] args, bool terminal, bool noColor)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApplication.Run(args, new CliConsole(stdout, stderr, terminal, terminal, noColor));
        return (code, stdout.ToString(), stderr.ToString());
    }
}
