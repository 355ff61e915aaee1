namespace VfioLab.Collections;

/// <summary>
/// A value stored over a run of consecutive keys in a <see cref="RunMap{T}"/>. A run stores the
/// value of its first key; <see cref="Advance"/> gives the value <c>offset</c> keys later. Constant
/// values (a pin count, a VMA id) return themselves; linear values (a first pfn) add the offset.
/// Two neighbouring runs merge when the left one, advanced over its whole length, equals the right one.
/// </summary>
internal interface IRunValue<T> : IEquatable<T>
    where T : struct, IRunValue<T>
{
    /// <summary>The value at <paramref name="offset"/> keys past the key this value belongs to.</summary>
    T Advance(ulong offset);
}
