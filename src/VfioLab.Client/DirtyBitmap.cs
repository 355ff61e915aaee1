namespace VfioLab.Client;

/// <summary>
/// A dirty-page bitmap as the kernel returned it: bit <c>n</c> of the little-endian 64-bit words stands for the page
/// at <c>Iova + n * PageSize</c>.
/// </summary>
public sealed class DirtyBitmap
{
    private readonly ulong[] _words;

    internal DirtyBitmap(ulong iova, ulong size, ulong pageSize, ulong[] words)
    {
        Iova = iova;
        Size = size;
        PageSize = pageSize;
        _words = words;
    }

    /// <summary>First IOVA covered.</summary>
    public ulong Iova { get; }

    /// <summary>Bytes covered.</summary>
    public ulong Size { get; }

    /// <summary>Bytes per bit.</summary>
    public ulong PageSize { get; }

    /// <summary>Pages covered (bits that carry meaning).</summary>
    public ulong PageCount => Size / PageSize;

    /// <summary>The raw words.</summary>
    public IReadOnlyList<ulong> Words => _words;

    /// <summary>Number of dirty pages.</summary>
    public ulong DirtyPageCount
    {
        get
        {
            ulong count = 0;
            foreach (ulong w in _words)
            {
                count += (ulong)System.Numerics.BitOperations.PopCount(w);
            }
            return count;
        }
    }

    /// <summary>Whether the page containing <paramref name="iova"/> is dirty (false outside the range).</summary>
    public bool IsDirty(ulong iova)
    {
        if (iova < Iova || iova - Iova >= Size)
        {
            return false;
        }
        ulong bit = (iova - Iova) / PageSize;
        return (_words[bit / 64] & (1UL << (int)(bit % 64))) != 0;
    }

    /// <summary>The dirty pages' IOVAs, in order.</summary>
    public IEnumerable<ulong> DirtyPages()
    {
        for (int w = 0; w < _words.Length; w++)
        {
            ulong word = _words[w];
            while (word != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(word);
                word &= word - 1;
                yield return Iova + (((ulong)w * 64) + (ulong)b) * PageSize;
            }
        }
    }

    /// <summary>Bytes of a bitmap covering <paramref name="size"/> bytes at <paramref name="pageSize"/>: whole
    /// 64-bit words, as the kernel requires.</summary>
    internal static ulong BytesFor(ulong size, ulong pageSize)
    {
        ulong pages = size / pageSize + (size % pageSize == 0 ? 0UL : 1UL);
        return (pages + 63) / 64 * 8;
    }
}
