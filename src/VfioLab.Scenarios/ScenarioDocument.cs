using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Scenarios;

/// <summary>
/// A parsed and validated v1 scenario file (docs/scenario-format.md): the host to build, its devices and processes,
/// and the steps to run. Parsing runs nothing; every name a step uses has been checked, so a document that parses
/// runs every step (<see cref="ScenarioRunner"/>), whatever each step then returns.
/// </summary>
public sealed class ScenarioDocument
{
    /// <summary>The schema version this reader knows (<c>vfiolab: 1</c>).</summary>
    public const int Version = 1;

    internal ScenarioDocument(string name, string? description, string file, HostSpec host, IReadOnlyList<DeviceSpec> devices,
        IReadOnlyList<ProcessSpec> processes, IReadOnlyList<ScenarioStep> steps)
    {
        Name = name;
        Description = description;
        File = file;
        Host = host;
        Devices = devices;
        Processes = processes;
        Steps = steps;
    }

    /// <summary>The scenario's <c>name</c>, or the file's name without its extension when it has none.</summary>
    public string Name { get; }

    /// <summary>The scenario's <c>description</c>, or null when it has none.</summary>
    public string? Description { get; }

    /// <summary>The file name used in messages and locations.</summary>
    public string File { get; }

    /// <summary>How many steps the scenario has.</summary>
    public int StepCount => Steps.Count;

    /// <summary>The <c>host:</c> section, with its defaults.</summary>
    internal HostSpec Host { get; }

    internal IReadOnlyList<DeviceSpec> Devices { get; }

    internal IReadOnlyList<ProcessSpec> Processes { get; }

    internal IReadOnlyList<ScenarioStep> Steps { get; }

    /// <summary>The process a step without <c>process:</c> runs in: the first declared one (null if none).</summary>
    internal ProcessSpec? DefaultProcess => Processes.Count > 0 ? Processes[0] : null;

    /// <summary>Parses scenario text.</summary>
    /// <param name="text">The scenario, as YAML.</param>
    /// <param name="file">The name used in messages and kept in <see cref="File"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> or <paramref name="file"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The text is not a well-formed scenario (located at the problem).</exception>
    public static ScenarioDocument Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        return ScenarioParser.Parse(text, file);
    }

    /// <summary>Reads and parses a scenario file, as strict UTF-8 (a byte-order mark allowed).</summary>
    /// <param name="path">The file; also the name used in messages.</param>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The file cannot be read, is not valid UTF-8 or is not a well-formed
    /// scenario (located at the problem).</exception>
    public static ScenarioDocument Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ScenarioParser.ParseFile(path);
    }

    /// <summary>The name and the file.</summary>
    public override string ToString() => $"{Name} ({File})";
}
