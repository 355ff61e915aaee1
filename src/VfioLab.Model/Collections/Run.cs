namespace VfioLab.Collections;

/// <summary>One run of a <see cref="RunMap{T}"/>: keys <see cref="Start"/> to <see cref="Last"/> inclusive.</summary>
internal readonly record struct Run<T>(ulong Start, ulong Last, T Value)
    where T : struct, IRunValue<T>
{
    /// <summary>Number of keys minus one; never overflows, unlike a count for the full key space.</summary>
    public ulong Span => Last - Start;

    /// <summary>The value at <paramref name="key"/>, which must lie inside the run.</summary>
    public T ValueAt(ulong key)
    {
        System.Diagnostics.Debug.Assert(key >= Start && key <= Last);
        return Value.Advance(key - Start);
    }

    /// <summary>Whether <paramref name="key"/> lies inside the run.</summary>
    public bool Contains(ulong key) => key >= Start && key <= Last;
}
