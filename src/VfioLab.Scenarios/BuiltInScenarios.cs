using System.Reflection;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Scenarios;

/// <summary>The scenarios shipped inside the assembly (<c>BuiltIn/*.yaml</c>), each a tour of one VFIO behaviour,
/// runnable by name: <c>vfiolab run NAME</c>, <c>vfiolab show NAME</c>; <c>vfiolab run</c> runs
/// <see cref="DefaultName"/>. In messages a built-in's file is <c>&lt;built-in&gt;/NAME.yaml</c>.</summary>
public static class BuiltInScenarios
{
    private const string Prefix = "VfioLab.Scenarios.BuiltIn.";
    private const string Suffix = ".yaml";

    /// <summary>The scenario <c>vfiolab run</c> runs without an argument.</summary>
    public const string DefaultName = "gpu-passthrough";

    /// <summary>Every built-in scenario, the default first, then by name.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. typeof(BuiltInScenarios).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(Suffix, StringComparison.Ordinal))
            .Select(n => n[Prefix.Length..^Suffix.Length])
            .OrderBy(n => n == DefaultName ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal)];

    /// <summary>Whether a built-in scenario has this name.</summary>
    /// <param name="name">The name, as <see cref="Names"/> spells it.</param>
    public static bool Exists(string name) => Names.Contains(name, StringComparer.Ordinal);

    /// <summary>The YAML text of a built-in scenario, exactly as shipped.</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <exception cref="ArgumentException">No built-in scenario has that name.</exception>
    public static string GetText(string name)
    {
        if (!Exists(name))
        {
            throw new ArgumentException($"no built-in scenario '{name}'", nameof(name));
        }
        using Stream s = typeof(BuiltInScenarios).Assembly.GetManifestResourceStream(Prefix + name + Suffix)!;
        using var reader = new StreamReader(s);
        return reader.ReadToEnd();
    }

    /// <summary>A built-in scenario, parsed.</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <exception cref="ArgumentException">No built-in scenario has that name.</exception>
    public static ScenarioDocument Load(string name) => ScenarioParser.Parse(GetText(name), PathOf(name));

    /// <summary>A built-in scenario's one-line <c>description</c> (empty when it has none).</summary>
    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <exception cref="ArgumentException">No built-in scenario has that name.</exception>
    public static string DescriptionOf(string name) => Load(name).Description ?? string.Empty;

    /// <summary>The display path used in messages about a built-in scenario.</summary>
    internal static string PathOf(string name) => $"<built-in>/{name}{Suffix}";
}
