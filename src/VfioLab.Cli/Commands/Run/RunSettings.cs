namespace VfioLab.Cli.Commands.Run;

/// <summary>What <c>vfiolab run</c> was asked to do.</summary>
/// <param name="Scenarios">Files, directories (their <c>*.yaml</c> in name order) and built-in names; empty: the built-in default.</param>
/// <param name="TracePath">Where trace lines go (<c>-</c>: standard output), or null.</param>
/// <param name="Check">Run the invariant checker after every step.</param>
/// <param name="Quiet">Print only failures and summaries.</param>
/// <param name="Report">End each scenario with its sizing report.</param>
/// <param name="Json">Write one JSON document (docs/schemas/run-output.schema.json) on standard output instead of the text report.</param>
/// <param name="JUnitPath">Where to write a JUnit XML report, or null.</param>
internal sealed record RunSettings(IReadOnlyList<string> Scenarios, string? TracePath, bool Check, bool Quiet, bool Report, bool Json, string? JUnitPath)
{
    /// <summary>Where to write the HTML report (docs/report.md), or null.</summary>
    public string? HtmlPath { get; init; }

    /// <summary>Also say why each expected error was refused (the check and its values), not only on failed steps.</summary>
    public bool Verbose { get; init; }

    /// <summary>The trace goes to standard output.</summary>
    public bool TraceToStdout => TracePath == "-";
}
