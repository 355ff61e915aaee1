namespace VfioLab.Cli.Commands.Probe;

/// <summary>Options of <c>vfiolab probe</c> (name -> takes a value).</summary>
internal static class ProbeCommandDefinition
{
    /// <summary>Probe the simulated host a scenario builds (file or built-in name) instead of the real kernel.</summary>
    public const string Scenario = "--scenario";

    /// <summary>With <see cref="Scenario"/>: the process to probe as (default: the first).</summary>
    public const string Process = "--process";

    public static IReadOnlyDictionary<string, bool> Options { get; } = new Dictionary<string, bool>(StringComparer.Ordinal)
    {
        [Scenario] = true,
        [Process] = true,
    };
}
