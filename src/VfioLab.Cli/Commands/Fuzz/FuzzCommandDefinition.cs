namespace VfioLab.Cli.Commands.Fuzz;

/// <summary>Options of <c>vfiolab fuzz</c> (name -> takes a value).</summary>
internal static class FuzzCommandDefinition
{
    public const string Seconds = "--seconds";
    public const string Seed = "--seed";
    public const string Rounds = "--rounds";
    public const string Campaign = "--campaign";
    public const string Profile = "--profile";
    public const string Out = "--out";

    public static IReadOnlyDictionary<string, bool> Options { get; } = new Dictionary<string, bool>(StringComparer.Ordinal)
    {
        [Seconds] = true,
        [Seed] = true,
        [Rounds] = true,
        [Campaign] = true,
        [Profile] = true,
        [Out] = true,
    };
}
