namespace VfioLab.Host;

/// <summary>A seeded bijection of <c>[0, Count)</c> computed on demand (a 4-round Feistel network with
/// cycle walking), so the scattered frame layout needs no per-slot table; no kernel counterpart,
/// it stands in for the unpredictable order of the buddy allocator's free lists.</summary>
/// <remarks>Immutable after construction.</remarks>
internal sealed class SlotPermutation
{
    private readonly ulong[] _keys = new ulong[4];
    private readonly int _halfBits;
    private readonly ulong _halfMask;

    /// <summary>Creates the permutation of <paramref name="count"/> slots for <paramref name="seed"/>.</summary>
    public SlotPermutation(ulong count, ulong seed)
    {
        Count = count;
        int bits = 2;
        while (bits < 64 && (1UL << bits) < count)
        {
            bits += 2;
        }
        _halfBits = bits / 2;
        _halfMask = (1UL << _halfBits) - 1;
        var rng = new SplitMix64(seed);
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i] = rng.Next();
        }
    }

    /// <summary>Number of slots permuted.</summary>
    public ulong Count { get; }

    /// <summary>The slot at position <paramref name="index"/> of the permuted order.</summary>
    public ulong this[ulong index]
    {
        get
        {
            System.Diagnostics.Debug.Assert(index < Count);
            ulong x = index;
            do
            {
                x = Encrypt(x);
            }
            while (x >= Count);
            return x;
        }
    }

    private ulong Encrypt(ulong x)
    {
        ulong left = x >> _halfBits;
        ulong right = x & _halfMask;
        foreach (ulong k in _keys)
        {
            var mix = new SplitMix64(right ^ k);
            ulong next = left ^ (mix.Next() & _halfMask);
            left = right;
            right = next;
        }
        return (left << _halfBits) | right;
    }
}
