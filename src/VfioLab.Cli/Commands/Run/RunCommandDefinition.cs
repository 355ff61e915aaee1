namespace VfioLab.Cli.Commands.Run;

/// <summary>Options of <c>vfiolab run</c> (name -> takes a value).</summary>
internal static class RunCommandDefinition
{
    public const string Trace = "--trace";
    public const string Check = "--check";
    public const string NoCheck = "--no-check";
    public const string Quiet = "--quiet";
    public const string Report = "--report";

    public static IReadOnlyDictionary<string, bool> Options { get; } = new Dictionary<string, bool>(StringComparer.Ordinal)
    {
        [Trace] = true,
        [Check] = false,
        [NoCheck] = false,
        [Quiet] = false,
        [Report] = false,
    };
}
