namespace VfioLab.Client;

/// <summary>One usable IOVA range, <paramref name="Start"/> to <paramref name="Last"/> inclusive (the uAPI's <c>end</c>).</summary>
public readonly record struct IovaWindow(ulong Start, ulong Last)
{
    /// <summary>Whether [<paramref name="iova"/>, <paramref name="iova"/> + <paramref name="size"/>) lies inside this window.</summary>
    public bool Contains(ulong iova, ulong size) =>
        size != 0 && iova >= Start && size - 1 <= Last - iova && iova <= Last;
}
