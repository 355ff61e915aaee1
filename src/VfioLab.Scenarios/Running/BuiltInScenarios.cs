using System.Reflection;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Scenarios.Running;

/// <summary>The scenarios shipped inside the assembly (Scenarios/BuiltIn/*.yaml), runnable by name:
/// <c>vfiolab run NAME</c>; <c>vfiolab run</c> runs <see cref="DefaultName"/>.</summary>
internal static class BuiltInScenarios
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
    public static bool Exists(string name) => Names.Contains(name, StringComparer.Ordinal);

    /// <summary>The display path used in messages about a built-in scenario.</summary>
    public static string PathOf(string name) => $"<built-in>/{name}{Suffix}";

    /// <summary>The YAML text of a built-in scenario.</summary>
    public static string GetText(string name)
    {
        using Stream? s = typeof(BuiltInScenarios).Assembly.GetManifestResourceStream(Prefix + name + Suffix)
            ?? throw new ArgumentException($"no built-in scenario '{name}'", nameof(name));
        using var reader = new StreamReader(s);
        return reader.ReadToEnd();
    }

    /// <summary>The scenario's <c>description</c>.</summary>
    public static string DescriptionOf(string name)
    {
        ScenarioDocument doc = ScenarioParser.Parse(GetText(name), PathOf(name));
        return doc.Description ?? string.Empty;
    }
}
