using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>The step of a scenario that was running when a trace event was emitted: its 0-based index and where
/// it is written (<c>FILE:LINE:COLUMN</c> of its kind).</summary>
internal readonly record struct TraceStep(int Index, SourceLocation Location);
