using System.Runtime.CompilerServices;

namespace VfioLab.Host;

/// <summary>A seeded bijection of <c>[0, Count)</c> computed on demand (a 4-round Feistel network with
/// cycle walking), so the scattered frame layout needs no per-slot table; no kernel counterpart,
/// it stands in for the unpredictable order of the buddy allocator's free lists.</summary>
/// <remarks>
/// <para>Immutable after construction.</para>
/// <para>A round's function is splitmix64 of the right half xor the round key, cut to a half's bits. Where a half has at
/// most <see cref="MaxTableBits"/> bits (up to 2^32 slots: every host up to 16 TiB of 4 KiB frames in 1-page runs) the
/// four round functions are tabulated once, one <c>ushort</c> per value of a half (64 KiB for the 72 GiB host of the
/// shattered-64g scenario), and a round is a load and a xor: the same outputs as computing splitmix64 each time, which
/// cost ~60 % of the allocator's time when populating 64 GiB on 1-page runs (3.6 encryptions per slot over 2^26 for 18.9 M
/// slots, issue 16). Larger hosts compute the rounds as before.</para>
/// </remarks>
internal sealed class SlotPermutation
{
    /// <summary>The widest half whose round functions are tabulated (4 tables of 2^16 entries, 512 KiB).</summary>
    public const int MaxTableBits = 16;

    /// <summary>The most positions <see cref="Fill"/> encrypts side by side (more are done one at a time).</summary>
    public const int MaxFill = 1024;

    private readonly ulong[] _keys = new ulong[4];
    private readonly int _halfBits;
    private readonly ulong _halfMask;
    // The four round functions, one after the other, 1 << _halfBits entries each; null for halves wider than
    // MaxTableBits.
    private readonly ushort[]? _rounds;

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
        if (_halfBits <= MaxTableBits)
        {
            int size = 1 << _halfBits;
            _rounds = new ushort[4 * size];
            for (int k = 0; k < 4; k++)
            {
                for (int r = 0; r < size; r++)
                {
                    _rounds[(k * size) + r] = (ushort)Round((ulong)r, _keys[k]);
                }
            }
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
            if (_rounds is { } t)
            {
                return WalkTabled(index, t);
            }
            ulong x = index;
            do
            {
                x = Encrypt(x);
            }
            while (x >= Count);
            return x;
        }
    }

    /// <summary>The slots at positions <c>[start, start + slots.Length)</c> of the permuted order, in that order.</summary>
    /// <remarks>Tabulated, the positions are encrypted side by side, pass after pass, each pass over those whose walk
    /// has not yet landed below <see cref="Count"/>, with no branch on the outcome: one position at a time, the walk's
    /// exit (taken after a random number of rounds) mispredicted once a slot and each round waited for the one before,
    /// ~65 ns a slot where this takes a few.</remarks>
    public void Fill(ulong start, Span<ulong> slots)
    {
        System.Diagnostics.Debug.Assert(start <= Count && (ulong)slots.Length <= Count - start);
        if (_rounds is not { } t || slots.Length > MaxFill)
        {
            for (int i = 0; i < slots.Length; i++)
            {
                slots[i] = this[start + (ulong)i];
            }
            return;
        }
        // Tabulated, every value is below 2^32 (halves of at most 16 bits): the walk runs on 32-bit values, and the tables
        // and the two arrays are read through refs, with no bounds check (the indexes are a half's value, below a table's
        // size, and positions below the span's length): ~10 % of the fill.
        int half = _halfBits;
        uint mask = (uint)_halfMask;
        ulong count = Count;
        nint size = 1 << half;
        ref ushort t0 = ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(t);
        ref ushort t1 = ref Unsafe.Add(ref t0, size);
        ref ushort t2 = ref Unsafe.Add(ref t0, 2 * size);
        ref ushort t3 = ref Unsafe.Add(ref t0, 3 * size);
        int length = slots.Length;
        Span<uint> values = stackalloc uint[length];
        Span<ushort> pending = stackalloc ushort[length];
        ref uint x0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(values);
        ref ushort p0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(pending);
        for (int i = 0; i < length; i++)
        {
            Unsafe.Add(ref x0, i) = (uint)(start + (ulong)i);
            Unsafe.Add(ref p0, i) = (ushort)i;
        }
        int n = length;
        while (n > 0)
        {
            int m = 0;
            for (int k = 0; k < n; k++)
            {
                int i = Unsafe.Add(ref p0, k);
                uint x = Unsafe.Add(ref x0, i);
                uint left = x >> half;
                uint right = x & mask;
                uint next = left ^ Unsafe.Add(ref t0, (nint)right);
                left = right;
                right = next;
                next = left ^ Unsafe.Add(ref t1, (nint)right);
                left = right;
                right = next;
                next = left ^ Unsafe.Add(ref t2, (nint)right);
                left = right;
                right = next;
                next = left ^ Unsafe.Add(ref t3, (nint)right);
                x = (right << half) | next;
                Unsafe.Add(ref x0, i) = x;
                Unsafe.Add(ref p0, m) = (ushort)i;
                m += x >= count ? 1 : 0;
            }
            n = m;
        }
        for (int i = 0; i < length; i++)
        {
            slots[i] = Unsafe.Add(ref x0, i);
        }
    }

    private ulong WalkTabled(ulong index, ushort[] t)
    {
        ulong x = index;
        do
        {
            x = EncryptTabled(x, t, _halfBits, (uint)_halfMask);
        }
        while (x >= Count);
        return x;
    }

    // The four rounds of Encrypt, each a table load (the round function of each half-value, tabulated).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong EncryptTabled(ulong x, ushort[] t, int half, uint mask)
    {
        int size = 1 << half;
        uint left = (uint)(x >> half);
        uint right = (uint)x & mask;
        uint next = left ^ t[right];
        left = right;
        right = next;
        next = left ^ t[size + (int)right];
        left = right;
        right = next;
        next = left ^ t[(2 * size) + (int)right];
        left = right;
        right = next;
        next = left ^ t[(3 * size) + (int)right];
        return ((ulong)right << half) | next;
    }

    private ulong Round(ulong right, ulong key)
    {
        var mix = new SplitMix64(right ^ key);
        return mix.Next() & _halfMask;
    }

    private ulong Encrypt(ulong x)
    {
        ulong left = x >> _halfBits;
        ulong right = x & _halfMask;
        foreach (ulong k in _keys)
        {
            ulong next = left ^ Round(right, k);
            left = right;
            right = next;
        }
        return (left << _halfBits) | right;
    }
}
