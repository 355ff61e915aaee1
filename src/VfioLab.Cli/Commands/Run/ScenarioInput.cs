using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>
/// Turns <c>run</c>'s arguments into scenario documents: a file, a directory's <c>*.yaml</c> files (in ordinal name
/// order, not recursive), or a built-in name (a file of that name wins); no argument is the built-in default. Every
/// problem is collected as an <see cref="InputError"/>, so all of them are reported together.
/// </summary>
internal static class ScenarioInput
{
    /// <summary>Parses every scenario the arguments name; returns them in order, with the errors of those that
    /// could not be read or parsed.</summary>
    public static IReadOnlyList<ScenarioDocument> Load(IReadOnlyList<string> arguments, List<InputError> errors)
    {
        var docs = new List<ScenarioDocument>();
        if (arguments.Count == 0)
        {
            docs.Add(BuiltIn(BuiltInScenarios.DefaultName));
            return docs;
        }
        foreach (string argument in arguments)
        {
            foreach (Func<ScenarioDocument> load in Expand(argument, errors))
            {
                try
                {
                    docs.Add(load());
                }
                catch (ScenarioParseException e)
                {
                    errors.Add(InputError.From(e));
                }
            }
        }
        return docs;
    }

    /// <summary>A built-in scenario by name, the default when <paramref name="fileOrName"/> is null, or a file.</summary>
    /// <exception cref="ScenarioParseException">The file cannot be read or is malformed.</exception>
    public static ScenarioDocument LoadOne(string? fileOrName) =>
        fileOrName is null ? BuiltIn(BuiltInScenarios.DefaultName)
        : !File.Exists(fileOrName) && BuiltInScenarios.Exists(fileOrName) ? BuiltIn(fileOrName)
        : ScenarioDocument.Load(fileOrName);

    private static IEnumerable<Func<ScenarioDocument>> Expand(string argument, List<InputError> errors)
    {
        if (File.Exists(argument))
        {
            return [() => ScenarioDocument.Load(argument)];
        }
        if (Directory.Exists(argument))
        {
            string[] files = [.. Directory.EnumerateFiles(argument, "*.yaml").Order(StringComparer.Ordinal)];
            if (files.Length == 0)
            {
                errors.Add(new InputError(null, $"'{argument}': the directory holds no *.yaml scenario file"));
            }
            return files.Select<string, Func<ScenarioDocument>>(f => () => ScenarioDocument.Load(f));
        }
        if (BuiltInScenarios.Exists(argument))
        {
            return [() => BuiltIn(argument)];
        }
        bool looksLikePath = argument.Contains('/', StringComparison.Ordinal) || argument.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal)
            || argument.EndsWith(".yaml", StringComparison.Ordinal) || argument.EndsWith(".yml", StringComparison.Ordinal);
        errors.Add(new InputError(null, looksLikePath
            ? $"'{argument}': no such file or directory"
            : $"'{argument}': no such file, directory or built-in scenario ('vfiolab list' shows the built-ins)"));
        return [];
    }

    private static ScenarioDocument BuiltIn(string name) => BuiltInScenarios.Load(name);
}
