using System.Reflection;

namespace VfioLab.Cli;

/// <summary>The version <c>vfiolab --version</c> prints: the assembly's informational version, which carries the
/// git commit (<c>+sha</c>) when the SDK knows it.</summary>
internal static class CliVersion
{
    public static string Informational { get; } =
        typeof(CliVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CliVersion).Assembly.GetName().Version?.ToString()
        ?? "unknown";
}
