using System.Diagnostics.CodeAnalysis;

namespace VfioLab.Host;

/// <summary>Throws for bugs in the model or nonsense from an in-process caller of the Host layer
/// (STYLE.md 10); user errors never come here, they return an errno.</summary>
internal static class HostThrowHelper
{
    /// <summary>An in-process caller broke the layer's contract.</summary>
    [DoesNotReturn]
    public static void ThrowInvalidOperation(string message) => throw new InvalidOperationException(message);

    /// <summary>An in-process caller passed an argument the layer never accepts.</summary>
    [DoesNotReturn]
    public static void ThrowArgument(string message, string paramName) => throw new ArgumentException(message, paramName);
}
