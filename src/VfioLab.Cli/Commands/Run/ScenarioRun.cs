using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>One scenario of a <c>run</c>, once it ran: the document, its outcome, and its sizing report as text
/// (when <c>--report</c> asked for one).</summary>
internal sealed record ScenarioRun(ScenarioDocument Document, ScenarioOutcome Outcome, IReadOnlyList<string> Sizing);
