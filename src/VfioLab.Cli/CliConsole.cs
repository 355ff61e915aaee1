namespace VfioLab.Cli;

/// <summary>
/// Where a command writes, and what the two streams are: a terminal gets colour (unless <c>NO_COLOR</c> is set
/// to a non-empty value, or <c>TERM=dumb</c>) and progress redrawn in place; a redirected stream gets plain lines.
/// </summary>
/// <param name="Out">Standard output: results.</param>
/// <param name="Error">Standard error: diagnostics.</param>
/// <param name="OutIsTerminal">Whether standard output is a terminal.</param>
/// <param name="ErrorIsTerminal">Whether standard error is a terminal.</param>
/// <param name="NoColor">Colour is off even on a terminal.</param>
internal sealed record CliConsole(TextWriter Out, TextWriter Error, bool OutIsTerminal = false, bool ErrorIsTerminal = false, bool NoColor = false)
{
    /// <summary>Styles for text written to <see cref="Out"/>.</summary>
    public ConsoleStyle OutStyle => new(OutIsTerminal && !NoColor);

    /// <summary>Styles for text written to <see cref="Error"/>.</summary>
    public ConsoleStyle ErrorStyle => new(ErrorIsTerminal && !NoColor);

    /// <summary>The process's own streams, as the environment describes them.</summary>
    public static CliConsole FromProcess() => new(Console.Out, Console.Error, !Console.IsOutputRedirected, !Console.IsErrorRedirected,
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")) || Environment.GetEnvironmentVariable("TERM") == "dumb");
}
