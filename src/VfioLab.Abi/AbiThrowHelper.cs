using System.Diagnostics.CodeAnalysis;

namespace VfioLab.Abi;

/// <summary>Throws for in-process misuse of the ABI helpers (a bug in the caller, never a user's VFIO error).</summary>
internal static class AbiThrowHelper
{
    [DoesNotReturn]
    internal static void ThrowDestinationTooShort(int length, int size) =>
        throw new ArgumentException($"destination holds {length} bytes; the struct needs {size}", "destination");

    [DoesNotReturn]
    internal static void ThrowLengthOutOfRange(int length, int size, int available) =>
        throw new ArgumentOutOfRangeException(nameof(length), length,
            $"length must be within 0..{size} (sizeof) and the destination's {available} bytes");
}
