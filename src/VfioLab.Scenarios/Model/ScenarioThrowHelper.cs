using System.Diagnostics.CodeAnalysis;

namespace VfioLab.Scenarios.Model;

/// <summary>Throws for the scenario layer: located parse errors, and bugs of an in-process caller (a runner asking for a field the schema does not give).</summary>
internal static class ScenarioThrowHelper
{
    [DoesNotReturn]
    public static void ThrowParse(SourceLocation location, string reason) => throw new ScenarioParseException(location, reason);

    [DoesNotReturn]
    public static T ThrowParse<T>(SourceLocation location, string reason) => throw new ScenarioParseException(location, reason);

    [DoesNotReturn]
    public static T ThrowInvalidOperation<T>(string message) => throw new InvalidOperationException(message);
}
