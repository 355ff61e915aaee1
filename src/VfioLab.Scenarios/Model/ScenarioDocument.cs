namespace VfioLab.Scenarios.Model;

/// <summary>A parsed and validated v1 scenario file: the host to build, its devices and processes, and the steps to run.</summary>
internal sealed record ScenarioDocument(
    string Name,
    string? Description,
    string File,
    HostSpec Host,
    IReadOnlyList<DeviceSpec> Devices,
    IReadOnlyList<ProcessSpec> Processes,
    IReadOnlyList<ScenarioStep> Steps)
{
    /// <summary>The schema version this parser reads.</summary>
    public const int Version = 1;

    /// <summary>The process a step without <c>process:</c> runs in: the first declared one (null if none).</summary>
    public ProcessSpec? DefaultProcess => Processes.Count > 0 ? Processes[0] : null;
}
