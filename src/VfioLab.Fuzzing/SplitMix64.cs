namespace VfioLab.Fuzzing;

/// <summary>The splitmix64 generator: a tiny seeded deterministic PRNG, so every campaign is a pure function of its
/// seed (STYLE.md 17). The same generator as the model's own (its scattered frame layouts), kept here because a
/// seed's sequence is the campaigns' contract, not the model's.</summary>
/// <remarks>A mutable struct with no shared state; each owner keeps its own copy.</remarks>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The next 64 pseudo-random bits.</summary>
    public ulong Next()
    {
        ulong z = _state += 0x9e3779b97f4a7c15UL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
        return z ^ (z >> 31);
    }
}
