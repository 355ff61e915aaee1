namespace VfioLab.Scenarios.Import;

/// <summary>
/// A QEMU trace turned into a scenario (<see cref="QemuTraceImporter.Import"/>): the YAML, whose every replayed call
/// expects what the model answered, and the calls where that is not what QEMU got.
/// </summary>
public sealed class QemuTraceReplay
{
    internal QemuTraceReplay(string yaml, int replayedCalls, IReadOnlyList<ReplayDifference> differences)
    {
        Yaml = yaml;
        ReplayedCalls = replayedCalls;
        Differences = differences;
    }

    /// <summary>The scenario (docs/scenario-format.md); <c>vfiolab run</c> passes it, every step meeting the model's
    /// answer; each replayed step carries its trace line in a comment, and a <c># differs:</c> comment where QEMU got
    /// something else.</summary>
    public string Yaml { get; }

    /// <summary>MAP_DMA and UNMAP_DMA calls the scenario replays.</summary>
    public int ReplayedCalls { get; }

    /// <summary>The replayed calls whose answer differs from QEMU's, in trace order.</summary>
    public IReadOnlyList<ReplayDifference> Differences { get; }

    /// <summary>Writes <see cref="Yaml"/> to <paramref name="path"/> whole or not at all: to a temporary file beside
    /// it, then renamed over it, so a failure (a full disk, a missing directory) leaves no half-written scenario and
    /// an existing file as it was.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or the file is not writable.</exception>
    public void Write(string path) => ScenarioFile.WriteAtomically(path, Yaml);
}
