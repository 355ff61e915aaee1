using VfioLab.Lab;

namespace VfioLab.Scenarios.Running;

// The session's host as the model's public API shows it, for callers that build a host from a scenario and go on
// in code (the fuzz campaigns' rigs): processes, devices, containers, pins, digest and invariant checks.
internal sealed partial class ScenarioSession
{
    private LabHost? _lab;

    /// <summary>The session's host through the model's public API (one <see cref="LabHost"/> per session).</summary>
    public LabHost Lab => _lab ??= new LabHost(Host);
}
