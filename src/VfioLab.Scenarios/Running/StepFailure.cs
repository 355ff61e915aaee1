using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>A step that cannot be carried out as written (an unbound name, an fd that is not a group,
/// a value out of range for its field): reported at the step with its location, never a crash.</summary>
internal sealed class StepFailure(SourceLocation location, string message) : Exception($"{location}: {message}")
{
    public SourceLocation Location { get; } = location;
}
