namespace VfioLab.Cli.Commands.List;

/// <summary>Options of <c>vfiolab list</c>: none.</summary>
internal static class ListCommandDefinition
{
    public static IReadOnlyDictionary<string, bool> Options { get; } = new Dictionary<string, bool>(StringComparer.Ordinal);
}
