namespace VfioLab.Collections;

/// <summary>
/// A value stored over a run of consecutive keys in a <see cref="RunMap{T}"/>. A run stores the
/// value of its first key; <see cref="Advance"/> gives the value <c>offset</c> keys later. Constant
/// values (a pin count, a VMA id) return themselves; linear values (a first pfn) add the offset.
/// Two neighbouring runs merge when the left one, advanced over its whole length, equals the right one.
/// </summary>
/// <remarks>
/// A value type may also pack itself into 8 bytes (<see cref="Packs"/>, <see cref="TryPack"/>,
/// <see cref="Unpack"/>), as the kernel's own pte_t or dma_pte is one word. A map of such values stores a
/// leaf of equal-length, back-to-back runs (a page table or an IOMMU table over memory shattered into
/// one-page runs of frames) as its first key, the run length and one word per run, instead of a start,
/// a last and an unpacked value per run. Values holding references (a VMA, a mapping) never pack.
/// </remarks>
internal interface IRunValue<T> : IEquatable<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Whether this type implements <see cref="TryPack"/>; false by default. A constant for
    /// the JIT, so maps of types that do not pack never try.</summary>
    static virtual bool Packs => false;

    /// <summary>The value at <paramref name="offset"/> keys past the key this value belongs to.</summary>
    T Advance(ulong offset);

    /// <summary>Packs <paramref name="value"/> into one word such that <see cref="Unpack"/> gives back a
    /// value equal to it; false when it does not fit (the leaf holding it then keeps the unpacked form).</summary>
    static virtual bool TryPack(T value, out ulong packed)
    {
        packed = 0;
        return false;
    }

    /// <summary>The value <see cref="TryPack"/> packed into <paramref name="packed"/>.</summary>
    static virtual T Unpack(ulong packed) => default;
}
